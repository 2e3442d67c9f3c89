"""What a detector sees: the canonical tables as Ibis expressions, the time window, and the
site inventory turned into expressions (internal/external addresses, local time, roles).

Everything here builds unbound-friendly Ibis expressions only, so a detector written against
a ``Context`` runs on DuckDB and on Spark alike. Address tests are string operations
(``startswith`` on the octets a range fixes, a numeric test on one octet at most), never
an engine-specific ``inet`` type.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from hemostat.inventory import Inventory, Network

#: addresses that are neither a host of the site nor a destination on the Internet
NOT_ROUTED = (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
    "::1/128", "fe80::/10", "ff00::/8",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Window:
    """The new data to judge, ``[start, end)``, and how much history baselines may use."""

    start: datetime
    end: datetime
    history: timedelta = timedelta(days=28)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"empty window: {self.start} .. {self.end}")


def match_network(ip: ir.StringValue, network: Network) -> ir.BooleanValue:
    """``ip`` (text) lies in ``network``: a prefix test, plus one octet compared as a number."""
    if network.version == 4:
        octets = str(network.network_address).split(".")
        whole, rest = divmod(network.prefixlen, 8)
        if whole == 4:
            return ip == str(network.network_address)
        if rest and (1 << (8 - rest)) <= 32:  # a few values: cheap string tests, no regex
            low = int(octets[whole])
            values = [
                ".".join([*octets[:whole], str(v)]) for v in range(low, low + (1 << (8 - rest)))
            ]
            if whole == 3:
                return ip.isin(values)
            return ibis.or_(*(ip.startswith(value + ".") for value in values))
        test = ip.startswith(".".join(octets[:whole]) + ".") if whole else ip.contains(".")
        if rest:  # one octet compared as a number (a regex, not split(): Spark's is a regex)
            low = int(octets[whole])
            octet = ip.re_extract(rf"^(?:\d+\.){{{whole}}}(\d+)", 1).try_cast("int64")
            test &= octet.between(low, low + (1 << (8 - rest)) - 1)
        return test
    return _match_v6(ip, network)


def _match_v6(ip: ir.StringValue, network: Network) -> ir.BooleanValue:
    """IPv6 by text, as Zeek and tshark write it (RFC 5952: lower case, no leading zeros).

    Up to /16 the first group's leading hex digits decide (ULA, link-local, multicast…);
    longer prefixes compare their whole groups as text (bits after the last whole group
    are not looked at).
    """
    lowered = ip.lower()
    if network.prefixlen == 128:
        return lowered == str(network.network_address)
    groups = network.network_address.exploded.split(":")
    if network.prefixlen > 16:
        whole = [g.lstrip("0") or "0" for g in groups[: network.prefixlen // 16]]
        return lowered.startswith(":".join(whole) + ":")
    digits = -(-network.prefixlen // 4)
    top = int(groups[0], 16) >> (16 - 4 * digits)
    count = 1 << (4 * digits - network.prefixlen)
    starts = [f"{value:0{digits}x}" for value in range(top, top + count)]
    four_digits = lowered.find(":") == 4
    return four_digits & ibis.or_(*(lowered.startswith(s) for s in starts))


def tiebreak(key: ir.Value, value: ir.Value) -> ir.Value:
    """A key for ``value.argmax(...)`` that gives ties to the largest ``value`` (a known one
    first), so that every engine, and every run of a parallel one, picks the same row; rows
    whose ``key`` is null are skipped, as with ``key`` itself."""
    ranked = ibis.struct({"key": key, "known": value.notnull(), "value": value})
    return ibis.ifelse(key.notnull(), ranked, ibis.null(ranked.type()))


def stamp(ts: ir.TimestampValue) -> ir.StringValue:
    """``ts`` as text, the same on every engine (a cast to string is not): for finding keys."""
    return ts.strftime("%Y-%m-%d %H:%M:%S")


def match_any(ip: ir.StringValue, networks: list[str] | tuple[str, ...]) -> ir.BooleanValue:
    tests = [match_network(ip, ipaddress.ip_network(n, strict=False)) for n in networks]
    return ibis.or_(*tests) if tests else ibis.literal(False)


@dataclass(frozen=True)
class Context:
    """The tables, window and inventory a detector's expression is built from."""

    flows: ir.Table
    dns: ir.Table
    access: ir.Table
    window: Window
    inventory: Inventory
    #: whether ``keep`` materialises (the runner, on a real backend) or passes through
    #: (an expression compiled to SQL only, e.g. for another engine's dialect)
    materialise: bool = False
    _local_cache: dict[str, object] = field(default_factory=dict, repr=False, compare=False)
    _kept: list[tuple[Any, Any]] = field(default_factory=list, repr=False, compare=False)

    # ---- intermediate results -------------------------------------------------------------

    def keep(self, table: ir.Table) -> ir.Table:
        """``table`` computed once and kept (a temporary table in DuckDB, a cached DataFrame
        in Spark) when the context materialises; else ``table`` itself. For a small result
        that a detector reads several times: one plan fewer for the engine to get wrong."""
        if not self.materialise:
            return table
        backend = table._find_backend()
        if backend.name != "duckdb":
            kept = table.cache()
            self._kept.append((backend, kept))
            return kept
        name = f"hemostat_keep_{uuid.uuid4().hex[:12]}"
        sql = ibis.to_sql(table, dialect="duckdb")
        backend.con.execute(f'CREATE TEMP TABLE "{name}" AS {sql}')
        self._kept.append((backend, name))
        return backend.table(name)

    def release(self) -> None:
        """Drop what ``keep`` computed (the runner, once the detector's rows are read)."""
        while self._kept:
            backend, kept = self._kept.pop()
            if isinstance(kept, str):
                backend.con.execute(f'DROP TABLE IF EXISTS "{kept}"')
            else:
                kept.release()

    # ---- time ------------------------------------------------------------------------------

    def current(self, table: ir.Table, span: timedelta = timedelta(0)) -> ir.Table:
        """Rows of ``table`` in the window, extended back by ``span`` (cumulative detectors)."""
        start = self.window.start - span
        return table.filter((table.ts >= start) & (table.ts < self.window.end))

    def history(self, table: ir.Table, span: timedelta = timedelta(0)) -> ir.Table:
        """Rows before ``current(table, span)``, as far back as the window's history goes."""
        end = self.window.start - span
        return table.filter((table.ts >= end - self.window.history) & (table.ts < end))

    def local(self, ts: ir.TimestampValue) -> ir.TimestampValue:
        """``ts`` shifted to the site's wall-clock time (DST changes inside the range kept)."""
        segments = self._offsets()
        if len(segments) == 1:
            return ts + ibis.interval(seconds=segments[0][1])
        cases = [(ts < until, ts + ibis.interval(seconds=off)) for until, off in segments[:-1]]
        return ibis.cases(*cases, else_=ts + ibis.interval(seconds=segments[-1][1]))

    def hour_of_week(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        """0 = Monday 00:00-01:00 local time … 167 = Sunday 23:00-24:00."""
        local = self.local(ts)
        return (local.day_of_week.index().cast("int32") * 24 + local.hour()).cast("int32")

    def _offsets(self) -> list[tuple[datetime, int]]:
        """(valid until, UTC offset in seconds) segments covering history and window."""
        zone = ZoneInfo(self.inventory.timezone)
        t = self.window.start - self.window.history - timedelta(days=2)
        segments: list[tuple[datetime, int]] = []
        while t <= self.window.end + timedelta(hours=1):
            offset = int((t.astimezone(zone).utcoffset() or timedelta(0)).total_seconds())
            if segments and segments[-1][1] == offset:
                segments[-1] = (t + timedelta(hours=1), offset)
            else:
                segments.append((t + timedelta(hours=1), offset))
            t += timedelta(hours=1)
        return segments

    # ---- addresses -------------------------------------------------------------------------

    def internal(self, ip: ir.StringValue) -> ir.BooleanValue:
        """The address belongs to the site (inventory ``internal``)."""
        return match_any(ip, self.inventory.internal)

    def external(self, ip: ir.StringValue) -> ir.BooleanValue:
        """The address is on the Internet: not internal, not loopback/link-local/multicast."""
        return ~self.internal(ip) & ~match_any(ip, NOT_ROUTED) & (ip != "255.255.255.255")

    def egress(self, span: timedelta = timedelta(0)) -> ir.Table:
        """Flows of the window (plus ``span``) from a site address to an Internet address."""
        flows = self.current(self.flows, span)
        return flows.filter(self.internal(flows.src_ip) & self.external(flows.dst_ip))

    def datastore_hosts(self) -> tuple[str, ...]:
        return tuple(sorted({d.host for d in self.inventory.datastores if d.host}))

    @cached_property
    def roles(self) -> ir.Table:
        """``ip, name, role`` of every inventory host (role ``None`` when not given)."""
        hosts = self.inventory.hosts
        return ibis.memtable(
            pa.table(
                {
                    "ip": [h.ip for h in hosts],
                    "name": [h.name for h in hosts],
                    "role": [h.role or "" for h in hosts],
                },
                schema=pa.schema(
                    [("ip", pa.string()), ("name", pa.string()), ("role", pa.string())]
                ),
            )
        )


def size(value: Any) -> str:
    """Bytes for a sentence: 830 kB, 1.2 GB, 719 MB ("?" when unknown)."""
    if value is None:
        return "?"
    n = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" or abs(n) >= 10 else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB" if abs(n) < 10 else f"{n:.0f} TB"
