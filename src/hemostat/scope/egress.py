"""The egress: what the incident's hosts sent to its outside destinations in its window,
including slices of connections still open at the window's end, and the DNS names a
tunnelling host sent out through the resolvers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from hemostat.schema import Finding, Incident
from hemostat.scope.model import Destination, Egress, EgressHost


def destinations(incident: Incident, findings: Iterable[Finding], internal: list[str]) -> list[str]:
    """Outside addresses, ranges and domains the incident and its findings name."""
    named: list[str] = [*incident.destinations]
    for f in findings:
        if f.destination:
            named.append(f.destination)
        for key in ("addresses", "top_destinations"):
            for item in f.evidence.get(key) or ():
                value = item.get("destination") if isinstance(item, dict) else item
                if isinstance(value, str):
                    named.append(value)
    nets = [ipaddress.ip_network(n, strict=False) for n in internal]
    out: list[str] = []
    for value in named:
        if value not in out and not _inside(value, nets):
            out.append(value)
    return out


def _inside(value: str, nets: list[Any]) -> bool:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False  # a domain name
    return any(net.version == n.version and net.subnet_of(n) for n in nets)


def is_domain(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return True
    return False


def measure(
    flows: pa.Table,
    dns: pa.Table,
    hosts: list[str],
    named: list[str],
    window: tuple[datetime, datetime],
    names: dict[str, str],
) -> Egress:
    """The egress of ``hosts`` to ``named`` destinations: ``flows`` holds every flow touching
    the hosts (window plus tail), ``dns`` their queries in the window."""
    start, end = window
    addresses = [d for d in named if not is_domain(d)]
    domains = [d for d in named if is_domain(d)]
    out = flows.filter(
        pc.and_(
            pc.and_(pc.is_in(flows["src_ip"], pa.array(hosts, pa.string())),
                    _to(flows["dst_ip"], addresses)),
            pc.greater(pc.fill_null(flows["bytes_out"], 0), 0),
        )
    ) if flows.num_rows and addresses else flows.slice(0, 0)  # fmt: skip
    rows = _shape(out)
    ts, end_ts = rows["ts"], rows["end_ts"]
    overlap = pc.and_(
        pc.less(ts, pa.scalar(end, ts.type)), pc.greater_equal(end_ts, pa.scalar(start, ts.type))
    )
    inside = rows.filter(overlap)
    still = inside.filter(pc.greater(inside["end_ts"], pa.scalar(end, ts.type)))
    later = rows.filter(
        pc.and_(pc.greater_equal(ts, pa.scalar(end, ts.type)),
                pc.is_in(_connection(rows), pc.unique(_connection(still))))
    )  # fmt: skip
    both = pa.concat_tables([inside, later, _dns_rows(dns, hosts, domains, window)])
    return _summarise(both, end, names)


def _connection(rows: pa.Table) -> pa.ChunkedArray:
    """One key per connection: its slices share addresses and ports."""
    parts = [rows[c].cast(pa.string()) for c in ("src_ip", "src_port", "dst_ip", "dst_port")]
    return pc.binary_join_element_wise(*parts, "|")


def _to(ips: pa.ChunkedArray, addresses: list[str]) -> pa.ChunkedArray:
    """True where the address is one of ``addresses`` or inside one of the ranges among them."""
    nets = [ipaddress.ip_network(a, strict=False) for a in addresses]
    unique = pc.unique(ips).drop_null().to_pylist()
    mine = [ip for ip in unique if _in_any(ip, nets)]
    return pc.fill_null(pc.is_in(ips, pa.array(mine, pa.string())), False)


def _in_any(ip: str, nets: list[Any]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address.version == n.version and address in n for n in nets)


def _dns_rows(
    dns: pa.Table, hosts: list[str], domains: list[str], window: tuple[datetime, datetime]
) -> pa.Table:
    """DNS queries under a tunnelling domain, as egress rows: the name is what leaves."""
    if not domains or dns.num_rows == 0:
        return _shape(pa.table({"ts": pa.array([], pa.timestamp("us", "UTC"))}))
    query = pc.utf8_lower(dns["query"])
    which = pa.nulls(dns.num_rows, pa.string())
    for d in domains:
        hit = pc.or_(pc.ends_with(query, "." + d.lower()), pc.equal(query, d.lower()))
        which = pc.if_else(hit, pa.scalar(d), which)
    keep = pc.and_(pc.is_valid(which), pc.is_in(dns["src_ip"], pa.array(hosts, pa.string())))
    q = dns.append_column("dst_ip", which).filter(keep)
    return _shape(
        pa.table({
            "ts": q["ts"], "end_ts": q["ts"], "src_ip": q["src_ip"], "dst_ip": q["dst_ip"],
            "bytes_out": pc.utf8_length(q["query"]).cast(pa.int64()),
        })
    )  # fmt: skip


_SHAPE = pa.schema(
    [
        ("ts", pa.timestamp("us", "UTC")), ("end_ts", pa.timestamp("us", "UTC")),
        ("src_ip", pa.string()), ("src_port", pa.int64()), ("dst_ip", pa.string()),
        ("dst_port", pa.int64()), ("bytes_out", pa.int64()),
    ]
)  # fmt: skip


def _shape(rows: pa.Table) -> pa.Table:
    columns = {
        field.name: rows.column(field.name).cast(field.type)
        if field.name in rows.column_names
        else pa.nulls(rows.num_rows, field.type)
        for field in _SHAPE
    }
    return pa.table(columns, schema=_SHAPE)


def _summarise(rows: pa.Table, end: datetime, names: dict[str, str]) -> Egress:
    if rows.num_rows == 0:
        return Egress(0, 0, (), (), 0, None, None, ())
    rows = rows.append_column("minute", pc.floor_temporal(rows["ts"], unit="minute"))
    per = rows.group_by("dst_ip").aggregate(
        [("bytes_out", "sum"), ("bytes_out", "count"), ("ts", "min"), ("end_ts", "max"),
         ("src_ip", "distinct")]
    ).to_pylist()  # fmt: skip
    by_host = rows.group_by("src_ip").aggregate([("bytes_out", "sum"), ("bytes_out", "count")])
    minutes = rows.group_by("minute").aggregate([("bytes_out", "sum")]).sort_by("minute")
    late = pc.greater(rows["end_ts"], pa.scalar(end, rows["end_ts"].type))
    return Egress(
        bytes=int(pc.sum(rows["bytes_out"]).as_py() or 0),
        flows=rows.num_rows,
        destinations=tuple(
            sorted(
                (
                    Destination(
                        d["dst_ip"],
                        d["bytes_out_sum"],
                        d["bytes_out_count"],
                        d["ts_min"].astimezone(UTC),
                        d["end_ts_max"].astimezone(UTC),
                        tuple(sorted(d["src_ip_distinct"])),
                    )
                    for d in per
                ),
                key=lambda d: -d.bytes,
            )
        ),
        hosts=tuple(
            sorted(
                (
                    EgressHost(
                        h["src_ip"],
                        names.get(h["src_ip"]),
                        h["bytes_out_sum"],
                        h["bytes_out_count"],
                    )
                    for h in by_host.to_pylist()
                ),
                key=lambda h: -h.bytes,
            )
        ),
        open_bytes=int(pc.sum(rows.filter(late)["bytes_out"]).as_py() or 0),
        first=pc.min(rows["ts"]).as_py().astimezone(UTC),
        last=pc.max(rows["end_ts"]).as_py().astimezone(UTC),
        timeline=tuple(
            (m.astimezone(UTC), int(b))
            for m, b in zip(
                minutes["minute"].to_pylist(), minutes["bytes_out_sum"].to_pylist(), strict=True
            )
        ),
    )
