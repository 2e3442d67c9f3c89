"""What an agent may send: bodies decoded into canonical Arrow rows, or refused with the
status and the field a person needs to fix it."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pytest

from hemostat.schema import Table, arrow_schema
from hemostat.server import Refused
from hemostat.server.batch import Limits, decode
from tests.server.conftest import batch, flow, gz

AGENT = "0123456789ab"
LIMITS = Limits(body=8 << 20, decompressed=64 << 20, rows=100_000)


def refused(body: Any, limits: Limits = LIMITS, encoding: str | None = "gzip") -> Refused:
    data = body if isinstance(body, bytes) else gz(body)
    with pytest.raises(Refused) as info:
        decode(data, encoding, AGENT, "dpi-db-01", limits)
    return info.value


def test_a_batch_becomes_canonical_arrow_rows() -> None:
    body = batch(AGENT, 7, flows=3)
    body["flows"][1].pop("source")
    body["flows"][2].pop("host")
    got = decode(gz(body), "gzip", AGENT, "dpi-db-01", LIMITS)
    assert got.id == f"{AGENT}-000000000007"
    assert got.counts == {"flows": 3, "dns": 0, "access": 0, "raw": 0}
    (kind, flows), = got.parts  # fmt: skip
    assert kind is Table.FLOWS and flows.schema == arrow_schema(Table.FLOWS)
    first = flows.to_pylist()[0]
    assert first["ts"] == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert (first["dst_port"], first["bytes_out"], first["pkts_out"]) == (443, 1000, None)
    assert flows.column("source").to_pylist() == ["agent"] * 3  # filled when missing
    assert flows.column("host").to_pylist() == ["dpi-db-01"] * 3
    assert got.stats.spool_bytes == 2048 and got.first_ts == first["ts"]


def test_identity_encoding_and_integral_floats_are_accepted() -> None:
    body = batch(AGENT, 1, flows=1)
    body["flows"][0]["bytes_out"] = 5.0
    got = decode(orjson.dumps(body), None, AGENT, "x", LIMITS)
    assert got.parts[0][1].column("bytes_out").to_pylist() == [5]


def _bad_flow(key: str, value: Any) -> dict[str, Any]:
    body = batch(AGENT, 1, flows=15)
    body["flows"][12][key] = value
    return body


@pytest.mark.parametrize(("key", "value", "message"), [
    ("dst_port", "443", "expected an integer, got string"),
    ("dst_port", 1.5, "expected an integer, got number 1.5"),
    ("dst_port", True, "expected an integer, got boolean"),
    ("dst_port", 70000, "not a port"),
    ("dst_port", 1 << 40, "integer out of range"),
    ("bytes_out", -1, "must not be negative"),
    ("bytes_out", (1 << 64) - 1, "integer out of range"),
    ("ts", "2026-11-23T10:00:00", "ISO 8601 time with its zone"),
    ("ts", "yesterday", "ISO 8601 time with its zone"),
    ("ts", None, "required"),
    ("src_ip", "not-an-ip", "not an IP address"),
    ("process", 12, "expected a string, got number"),
    ("process", {"name": "curl"}, "expected a string, got object"),
    ("open", "yes", "expected true or false"),
    ("colour", "red", "unknown column of flows"),
    ("ingest_id", 3, "set by the collector"),
])  # fmt: skip
def test_a_bad_value_is_a_422_naming_row_and_column(key: str, value: Any, message: str) -> None:
    error = refused(_bad_flow(key, value))
    assert (error.status, error.field) == (422, f"flows[12].{key}")
    assert message in error.message


@pytest.mark.parametrize(("section", "rows", "field", "message"), [
    ("flows", [flow("b", 0), 7], "flows[1]", "expected an object, got number"),
    ("flows", {"ts": 1}, "flows", "must be a list"),
    ("dns", [{"ts": "2026-11-23T10:00:00Z", "answers": "1.2.3.4"}], "dns[0].answers",
     "a list of strings"),
    ("access", [{"ts": "2026-11-23T10:00:00Z", "rows": "many"}], "access[0].rows",
     "an integer"),
])  # fmt: skip
def test_other_sections_name_their_fields(
    section: str, rows: Any, field: str, message: str
) -> None:
    error = refused(batch(AGENT, 1, flows=0) | {section: rows})
    assert (error.status, error.field) == (422, field) and message in error.message


def test_dns_and_access_rows_are_typed() -> None:
    body = batch(AGENT, 1, flows=0, dns=[
        {"ts": "2026-11-23T10:00:00Z", "src_ip": "10.0.0.1", "query": "a.example",
         "qtype": "A", "answers": ["1.2.3.4"]}],
        access=[{"ts": "2026-11-23T10:00:01+01:00", "host": "db", "user": "u", "action": "read",
                 "object": "file:///srv/pacs/1.dcm", "rows": None, "bytes": 10,
                 "client_ip": "10.0.0.9"}])  # fmt: skip
    got = dict(decode(gz(body), "gzip", AGENT, "n", LIMITS).parts)
    assert got[Table.DNS].column("answers").to_pylist() == [["1.2.3.4"]]
    assert got[Table.ACCESS].column("ts").to_pylist() == [datetime(2026, 11, 23, 9, 0, 1,
                                                                   tzinfo=UTC)]  # fmt: skip


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"agent": "ffffffffffff"}, 403, "agent"),
    ({"batch": "0123456789ab-7"}, 422, "batch"),
    ({"batch": "ffffffffffff-000000000001"}, 422, "batch"),
    ({"created": "now"}, 422, "created"),
    ({"created": None}, 422, "created"),
    ({"extra": 1}, 422, "extra"),
    ({"stats": {"spool_bytes": "big"}}, 422, "stats.spool_bytes"),
    ({"stats": {"oldest_unsent": "x"}}, 422, "stats.oldest_unsent"),
])  # fmt: skip
def test_the_envelope_is_checked(change: dict[str, Any], status: int, field: str) -> None:
    error = refused(batch(AGENT, 1) | change)
    assert (error.status, error.field) == (status, field)


def test_unknown_stats_keys_are_ignored() -> None:
    body = batch(AGENT, 1)
    body["stats"]["from_the_future"] = 1
    assert decode(gz(body), "gzip", AGENT, "n", LIMITS).stats.cpu_seconds == 1.5


@pytest.mark.parametrize(("data", "encoding", "status"), [
    (b"\x1f\x8b\x08\x00garbage", "gzip", 400),
    (gzip.compress(b'{"agent": 1}')[:-6], "gzip", 400),  # truncated
    (gzip.compress(b"{not json"), "gzip", 400),
    (b"[1, 2]", None, 422),
    (b"{}", "br", 415),
])  # fmt: skip
def test_bodies_that_do_not_decode(data: bytes, encoding: str | None, status: int) -> None:
    error = refused(data, encoding=encoding)
    assert error.status == status
    assert error.field == ("Content-Encoding" if status == 415 else "body")


def test_limits_are_413() -> None:
    small = Limits(body=1 << 20, decompressed=4096, rows=10)
    assert refused(batch(AGENT, 1, flows=11), small).status == 413  # rows
    bomb = gzip.compress(b" " * 100_000 + orjson.dumps(batch(AGENT, 1)))
    assert len(bomb) < 4096
    assert refused(bomb, small).status == 413  # decompressed size


ZEEK_CONN = """#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\torig_pkts\tresp_pkts
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tcount\tcount
1795428000.000000\tCa1\t10.0.0.1\t50000\t203.0.113.9\t443\ttcp\tssl\t1.5\t1000\t200\tSF\t10\t8
1795428001.000000\tCa2\t10.0.0.2\t50001\t203.0.113.9\t443\ttcp\tssl\t2.5\t3000\t400\tSF\t12\t9
this line is broken
"""  # fmt: skip


def test_raw_chunks_go_through_the_ingest_readers() -> None:
    chunk = {"format": "zeek_tsv", "path": "/var/log/zeek/current/conn.log", "first_line": 1201,
             "lines": ZEEK_CONN.splitlines()}  # fmt: skip
    got = decode(gz(batch(AGENT, 1, flows=0, raw=[chunk])), "gzip", AGENT, "n", LIMITS)
    assert got.counts["raw"] == len(chunk["lines"])
    (kind, part), = got.parts  # fmt: skip
    assert kind is Table.FLOWS and isinstance(part, pa.Table)
    assert part.column("conn_id").to_pylist() == ["Ca1", "Ca2"]  # the broken line skipped
    assert part.column("bytes_out").to_pylist() == [1000, 3000]


@pytest.mark.parametrize(("chunk", "field", "message"), [
    ({"format": "pcap", "path": "x", "lines": []}, "raw[0].format", "unknown format"),
    ({"format": "zeek_tsv", "path": "c.log", "lines": [1]}, "raw[0].lines", "list of strings"),
    ({"format": "zeek_tsv", "path": "c.log", "lines": [], "more": 1}, "raw[0].more", "unknown"),
    ({"format": "zeek_tsv", "path": "/z/conn.log", "first_line": 40,
      "lines": ["1795428000.0\tCa1\t10.0.0.1"]}, "raw[0]", "/z/conn.log"),
])  # fmt: skip
def test_bad_raw_chunks_are_422(chunk: dict[str, Any], field: str, message: str) -> None:
    error = refused(batch(AGENT, 1, flows=0, raw=[chunk]))
    assert (error.status, error.field) == (422, field) and message in error.message
