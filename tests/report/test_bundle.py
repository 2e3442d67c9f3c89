"""The evidence bundle, written from a real store: the right rows in each file, every file's
SHA-256 in the manifest, the manifest's own hash returned, and the same zip twice."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from hemostat import __version__
from hemostat.detect.runner import save
from hemostat.errors import ConfigError
from hemostat.report import Bundle, write_bundle
from hemostat.schema import ACCESS, FLOWS, Finding, Kind, Table
from hemostat.scope.model import Scope
from hemostat.store import Store
from tests.report.conftest import ACTIONS, CLOUD, DB, EGRESS_START, FS, JUMP, at, supplier_scope

NOW = datetime.fromisoformat("2023-06-14T02:10:00+00:00")


def _flow(
    src: str, dst: str, port: int, start: datetime, minutes: float, sent: int
) -> dict[str, Any]:
    return {"ts": start, "end_ts": start + timedelta(minutes=minutes), "src_ip": src,
            "src_port": 50_000, "dst_ip": dst, "dst_port": port, "proto": "tcp",
            "bytes_out": sent, "bytes_in": sent // 100, "conn_id": f"C{src}{dst}{start:%H%M}"}  # fmt: skip


def _access(user: str, obj: str, ts: datetime, rows: int) -> dict[str, Any]:
    return {"ts": ts, "host": DB, "user": user, "process": "pg_dump", "action": "export",
            "object": obj, "rows": rows, "bytes": rows * 1500, "client_ip": JUMP}  # fmt: skip


FLOWS_IN = [  # (flow, bundle file it belongs in, or None)
    (_flow(FS, CLOUD, 443, EGRESS_START, 20, 196_000_000), "egress"),
    (_flow(FS, CLOUD, 443, EGRESS_START + timedelta(seconds=5), 19.9, 197_000_000), "egress"),
    (_flow(FS, CLOUD, 443, EGRESS_START + timedelta(seconds=9), 19.8, 197_000_000), "egress"),
    (_flow(FS, CLOUD, 443, at(0, 0) - timedelta(minutes=10), 15, 1_000), "egress"),  # overlaps
    (_flow(FS, CLOUD, 443, at(5, 0), 1, 1_000), None),  # after the window
    (_flow(FS, "8.8.8.8", 53, at(1, 15), 0.1, 80), None),  # another destination
    (_flow(DB, JUMP, 5432, at(0, 15), 26, 1_900_000_000), "lineage"),
    (_flow(DB, JUMP, 5432, at(6, 0), 1, 5_000), None),  # the same pair, long after
    (_flow(DB, JUMP, 22, at(0, 20), 1, 5_000), None),  # another port
    *[(_flow(JUMP, FS, 445, at(0, 44) + timedelta(minutes=4 * i), 4, 475_000_000), "lineage")
      for i in range(4)],
]  # fmt: skip
ACCESS_IN = [
    (_access("vx-support", "postgresql://dpi/public.patients", at(0, 15), 770_000), True),
    (_access("vx-support", "postgresql://dpi/public.documents", at(0, 33), 410_000), True),
    (_access("vx-support", "postgresql://dpi/public.documents", at(0, 40), 110_000), True),
    (_access("dr-martin", "postgresql://dpi/public.patients", at(0, 20), 12), False),
    (_access("vx-support", "postgresql://dpi/public.patients", at(3, 0), 5), False),
]


def _finding(ident: str, host: str = FS) -> Finding:
    return Finding(ident, "rare_destination", Kind.EXFILTRATION, EGRESS_START, at(1, 30), host,
                   CLOUD, 90.0, 590_000_000, ("T1567.002",), "upload", (host,),
                   evidence={"flows": 3, "first_seen": "2023-06-14T01:10:00Z"})  # fmt: skip


def _table(schema: pa.Schema, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "home") as s:
        s.append(Table.FLOWS, _table(FLOWS, [f for f, _ in FLOWS_IN]))
        s.append(Table.ACCESS, _table(ACCESS, [a for a, _ in ACCESS_IN]))
        ids = supplier_scope().incident.findings
        save(s, [_finding(i) for i in ids] + [_finding("F-other", host="10.9.9.9")])
        yield s


@pytest.fixture
def scope() -> Scope:
    return dataclasses.replace(supplier_scope(), actions=ACTIONS)


def _open(bundle: Bundle) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    zf = zipfile.ZipFile(bundle.path)
    return zf, json.loads(zf.read("manifest.json"))


def _rows(zf: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(zf.read(name).decode())))


def test_every_file_matches_its_hash_and_the_manifest_hash_is_returned(
    tmp_path: Path, store: Store, scope: Scope
) -> None:
    bundle = write_bundle(store, scope, tmp_path / "INC-3f2a9c1e.zip", generated_at=NOW)
    zf, manifest = _open(bundle)
    assert hashlib.sha256(zf.read("manifest.json")).hexdigest() == bundle.manifest_sha256
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(zf.namelist()) == {*listed, "manifest.json", "SHA256SUMS"}
    for name, entry in listed.items():
        data = zf.read(name)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert len(data) == entry["size"], name
    assert manifest["incident"] == "INC-3f2a9c1e" and manifest["hemostat"] == __version__
    assert manifest["generated_at"] == "2023-06-14T02:10:00Z"
    assert [(f.name, f.sha256) for f in bundle.files] == [
        (n, e["sha256"]) for n, e in listed.items()
    ]


def test_each_file_holds_exactly_the_rows_behind_the_scope(
    tmp_path: Path, store: Store, scope: Scope
) -> None:
    bundle = write_bundle(store, scope, tmp_path / "b.zip")
    zf, manifest = _open(bundle)
    rows = {f["name"]: f["rows"] for f in manifest["files"]}
    egress = _rows(zf, "egress_flows.csv")
    assert len(egress) == rows["egress_flows.csv"] == 4
    assert {(r["src_ip"], r["dst_ip"]) for r in egress} == {(FS, CLOUD)}
    lineage = _rows(zf, "lineage_flows.csv")
    assert len(lineage) == rows["lineage_flows.csv"] == 5
    by_hop = {(r["hop"], r["src_ip"], r["dst_port"]) for r in lineage}
    assert by_hop == {("1", JUMP, "445"), ("2", DB, "5432")}  # hop 1 is STAGE, 2 is PULL
    access = _rows(zf, "access_events.csv")
    assert len(access) == rows["access_events.csv"] == 3
    assert {r["user"] for r in access} == {"vx-support"} and {r["datastore"] for r in access} == {
        "dpi"
    }
    findings = [json.loads(line) for line in zf.read("findings.jsonl").splitlines()]
    assert sorted(f["id"] for f in findings) == sorted(scope.incident.findings)
    assert findings[0]["evidence"] == {"flows": 3, "first_seen": "2023-06-14T01:10:00Z"}
    actions = [json.loads(line) for line in zf.read("actions.jsonl").splitlines()]
    assert [a["id"] for a in actions] == ["A-2", "A-1", "A-3"]
    assert actions[0]["ts"] == "2023-06-14T01:30:20Z"
    scoped = json.loads(zf.read("scope.json"))
    assert scoped["actions"] == actions  # as_json keeps the audit log's datetimes: made ISO
    want = {k: v for k, v in scope.as_json().items() if k != "actions"}
    assert {k: v for k, v in scoped.items() if k != "actions"} == json.loads(json.dumps(want))


def test_sha256sum_checks_the_unzipped_bundle(tmp_path: Path, store: Store, scope: Scope) -> None:
    bundle = write_bundle(store, scope, tmp_path / "b.zip")
    out = tmp_path / "unzipped"
    zipfile.ZipFile(bundle.path).extractall(out)
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout.count(": OK") == 7  # six files and the manifest
    (out / "egress_flows.csv").write_text("tampered\n")
    bad = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True)
    assert bad.returncode != 0


def test_the_same_store_and_scope_give_the_same_zip(
    tmp_path: Path, store: Store, scope: Scope
) -> None:
    one = write_bundle(store, scope, tmp_path / "one.zip", generated_at=NOW)
    two = write_bundle(store, scope, tmp_path / "two.zip", generated_at=NOW)
    assert one.path.read_bytes() == two.path.read_bytes()
    later = write_bundle(
        store, scope, tmp_path / "later.zip", generated_at=NOW + timedelta(hours=1)
    )
    assert later.manifest_sha256 != one.manifest_sha256
    assert [f.sha256 for f in later.files] == [f.sha256 for f in one.files]


def test_a_scope_with_nothing_behind_it_writes_empty_files(
    tmp_path: Path, store: Store, nothing: Scope
) -> None:
    bundle = write_bundle(store, nothing, tmp_path / "n.zip")
    zf, manifest = _open(bundle)
    rows = {f["name"]: f["rows"] for f in manifest["files"]}
    assert rows == {"egress_flows.csv": 0, "lineage_flows.csv": 0, "access_events.csv": 0,
                    "findings.jsonl": 0, "actions.jsonl": 0, "scope.json": 1}  # fmt: skip
    assert zf.read("lineage_flows.csv").decode().startswith('"hop","ts","end_ts"')


def test_an_unwritable_path_is_a_config_error(tmp_path: Path, store: Store, scope: Scope) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write the evidence bundle"):
        write_bundle(store, scope, blocker / "b.zip")
