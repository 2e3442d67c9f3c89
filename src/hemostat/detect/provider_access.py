"""Supplier access outside its envelope: the inventory declares, per supplier, the public
ranges it connects from and its VPN pool (``sources``), its accounts, the hosts it may reach
and its hours; a session that breaks any of these is what a hijacked supplier access looks
like (the entry point of DESIGN §1).

A *session* is the activity of one VPN pool address (a supplier's internal ``sources``) with
no pause longer than ``session_gap_minutes``. To it are attached: the accounts that logged
in on the hosts it reached (``access`` logins whose client is the pool address), the VPN
login that opened it (``access`` login on ``vpn://…``, whose client is the public address),
else the outside address whose flows to the VPN concentrator began just before. A VPN login
of a supplier account, or from a supplier range, that opened no session is judged alone.

Each breach of the envelope adds its weight to the score: a public address outside the
supplier's ranges, activity outside its hours (local time), a reached host outside its
``hosts``, an account it did not declare, new onward connections from the reached hosts
(RDP, SMB, SSH, WinRM, or to a data store: lateral movement), hosts the supplier never
reached before, and a volume far above its usual sessions. Sessions inside the envelope
score 0 and are not reported.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir

from hemostat.detect.context import Context, match_any, stamp
from hemostat.detect.words import Words, moment, say
from hemostat.inventory import Inventory, Provider
from hemostat.schema import Kind

#: remote administration and file sharing: how an intruder moves on from where it landed
LATERAL_PORTS = (22, 135, 139, 445, 3389, 5985, 5986)


@dataclass(frozen=True)
class ProviderAccess:
    id: ClassVar[str] = "provider_access"
    kind: ClassVar[Kind] = Kind.THIRD_PARTY_ACCESS
    attack: ClassVar[tuple[str, ...]] = ("T1133", "T1199", "T1078", "T1021")

    session_gap_minutes: float = field(
        default=5.0,
        metadata={"help": "A pause longer than this ends a supplier session."},
    )
    login_lead_minutes: float = field(
        default=10.0,
        metadata={"help": "How long before a session's first flow its VPN login may be."},
    )
    lateral_ports: tuple[int, ...] = field(
        default=(22, 139, 445, 3389, 5985, 5986),
        metadata={"help": "Ports of onward connections from reached hosts that count as "
                          "lateral movement (data-store ports count too)."},
    )  # fmt: skip
    ignore_ports: tuple[int, ...] = field(
        default=(53, 67, 68, 88, 123, 389),
        metadata={"help": "Infrastructure ports (DNS, DHCP, Kerberos, NTP, LDAP) a VPN "
                          "client may reach whatever its envelope."},
    )  # fmt: skip
    volume_factor: float = field(
        default=10.0,
        metadata={"help": "A session moving this many times the supplier's median session "
                          "(and at least min_volume) is a volume breach."},
    )  # fmt: skip
    min_volume: int = field(
        default=1_000_000_000,
        metadata={"help": "Bytes a session must move before its volume can count."},
    )
    weight_source: float = field(
        default=35.0, metadata={"help": "Score for a public address outside the ranges."}
    )
    weight_hours: float = field(
        default=25.0, metadata={"help": "Score for activity outside the declared hours."}
    )
    weight_hosts: float = field(
        default=25.0, metadata={"help": "Score for reaching a host outside the declared ones."}
    )
    weight_account: float = field(
        default=30.0, metadata={"help": "Score for an account the supplier did not declare."}
    )
    weight_lateral: float = field(
        default=20.0, metadata={"help": "Score for new onward connections from reached hosts."}
    )
    weight_new_host: float = field(
        default=10.0, metadata={"help": "Score for hosts the supplier never reached before."}
    )
    weight_volume: float = field(
        default=15.0, metadata={"help": "Score for a volume far above the supplier's usual."}
    )
    max_session_hours: float = field(
        default=24.0,
        metadata={"help": "Longest session whose outside address is looked up in the flows "
                          "to the VPN concentrator (when no VPN login event names it)."},
    )  # fmt: skip
    history_days: float = field(
        default=14.0,
        metadata={"help": "Days of history (at most the site's) for hosts first reached, "
                          "onward connections first seen and the usual session."},
    )  # fmt: skip
    min_score: float = field(
        default=30.0, metadata={"help": "Findings scoring below this are not reported."}
    )

    # ---- the expression -------------------------------------------------------------------

    def run(self, ctx: Context) -> ir.Table:
        providers = [p for p in ctx.inventory.providers if p.sources or p.accounts]
        if not providers:
            return _empty(ctx)
        span = timedelta(minutes=self.session_gap_minutes + self.login_lead_minutes)
        logins = self._vpn_logins(ctx, providers, span)
        sessions = self._sessions(ctx, providers, span)
        if sessions is None:
            return self._alone(ctx, logins, None, span)
        known, sessions = self._attach(ctx, providers, sessions, logins, span)
        found = self._judge(ctx, providers, sessions, known)
        return found.union(self._alone(ctx, logins, known, span))

    # sessions from the VPN pools ---------------------------------------------------------

    def _sessions(self, ctx: Context, providers: list[Provider], span: timedelta) -> Any:
        pools = {p.name: _split(ctx.inventory, p.sources)[1] for p in providers}
        if not any(pools.values()):
            return None
        f = _reference(ctx, ctx.flows, span, self.history_days)
        label = ibis.cases(
            *((match_any(f.src_ip, nets), name) for name, nets in pools.items() if nets),
            else_=ibis.null("string"),
        )
        t = f.filter(
            (f.src_ip != f.dst_ip) & ~f.dst_port.isin(self.ignore_ports)
            & match_any(f.src_ip, [n for nets in pools.values() for n in nets])
        )  # fmt: skip
        t = t.select(
            "ts",
            "end_ts",
            "src_ip",
            "dst_ip",
            "dst_port",
            "bytes_out",
            "bytes_in",
            "conn_id",
            provider=label,
        ).filter(lambda t: ctx.internal(t.dst_ip))
        before = ibis.window(group_by=t.src_ip, order_by=t.ts, rows=(None, -1))
        upto = ibis.window(group_by=t.src_ip, order_by=t.ts, rows=(None, 0))
        gap = ibis.interval(seconds=int(self.session_gap_minutes * 60))
        prev = t.end_ts.max().over(before)
        t = t.mutate(opens=(prev.isnull() | (t.ts > prev + gap)).cast("int64"))
        t = t.mutate(sid=t.opens.sum().over(upto))
        first = t.group_by("provider", "dst_ip").aggregate(first_reached=t.ts.min())
        t = t.join(first, ["provider", "dst_ip"])
        opened = t.ts.min().over(group_by=[t.src_ip, t.sid])
        t = t.mutate(
            off=~self._in_hours(ctx, providers, t.provider, t.ts),
            allowed=self._allowed(providers, t.provider, t.dst_ip),
            new=t.first_reached >= opened,
        )
        s = t.group_by(host=t.src_ip, sid=t.sid).aggregate(
            provider=t.provider.max(), ts=t.ts.min(), end_ts=t.end_ts.max(),
            sent=t.bytes_out.sum(), received=t.bytes_in.sum(),
            reached=t.dst_ip.collect(distinct=True),
            outside=t.dst_ip.collect(distinct=True, where=~t.allowed),
            new_hosts=t.dst_ip.nunique(where=t.new),
            off_hours=t.off.any(), ports=t.dst_port.collect(distinct=True),
            conn_ids=t.conn_id.collect(),
        )  # fmt: skip
        s = s.mutate(total=(s.sent + s.received).cast("float64"))
        usual = s.group_by("provider").aggregate(
            usual=s.total.median(), sessions=s.count(), since=s.ts.min()
        )
        s = s.join(usual, "provider")
        return s.filter(s.end_ts >= ctx.window.start - span).mutate(
            seen_before=s.since < s.ts - gap
        )

    def _in_hours(
        self, ctx: Context, providers: list[Provider], name: ir.StringValue, ts: Any
    ) -> ir.BooleanValue:
        local = ctx.local(ts)
        minute = local.hour().cast("int32") * 60 + local.minute().cast("int32")
        cases = []
        for p in providers:
            if not p.hours:
                continue
            a, b = (int(x[:2]) * 60 + int(x[3:]) for x in p.hours.split("-"))
            inside = minute.between(a, b - 1) if a < b else (minute >= a) | (minute < b)
            cases.append((name == p.name, inside))
        return ibis.cases(*cases, else_=True) if cases else ibis.literal(True)

    @staticmethod
    def _allowed(providers: list[Provider], name: ir.StringValue, ip: Any) -> ir.BooleanValue:
        cases = [(name == p.name, match_any(ip, p.hosts)) for p in providers if p.hosts]
        return ibis.cases(*cases, else_=True) if cases else ibis.literal(True)

    # logins ----------------------------------------------------------------------------

    def _vpn_logins(self, ctx: Context, providers: list[Provider], span: timedelta) -> ir.Table:
        """VPN logins of a supplier account or from a supplier's range, with their breaches."""
        a = _reference(ctx, ctx.access, span, self.history_days)
        a = a.filter((a.action == "login") & a.object.startswith("vpn://"))
        a = a.select("ts", "host", "user", "client_ip")
        accounts = [(p.name, p.accounts) for p in providers if p.accounts]
        ranges = [(p.name, _split(ctx.inventory, p.sources)[0]) for p in providers]
        by_account = ibis.cases(
            *((a.user.isin(acc), name) for name, acc in accounts), else_=ibis.null("string")
        ) if accounts else ibis.null("string")  # fmt: skip
        source = a.client_ip.fill_null("")
        by_range = ibis.cases(
            *((match_any(source, nets), name) for name, nets in ranges if nets),
            else_=ibis.null("string"),
        ) if any(n for _, n in ranges) else ibis.null("string")  # fmt: skip
        a = a.mutate(provider=by_account.fill_null(by_range), by_account=by_account.notnull())
        a = a.filter(a.provider.notnull())
        declared = dict(ranges)
        outside = ibis.cases(
            *((a.provider == name, ~match_any(source, nets)) for name, nets in declared.items()
              if nets),
            else_=False,
        )  # fmt: skip
        return a.select(
            login_ts=a.ts, vpn=a.host, account=a.user, source=a.client_ip,
            login_provider=a.provider, source_outside=outside & a.client_ip.notnull(),
            account_undeclared=~a.by_account,
            login_off=~self._in_hours(ctx, providers, a.provider, a.ts),
        )  # fmt: skip

    def _attach(
        self,
        ctx: Context,
        providers: list[Provider],
        sessions: ir.Table,
        logins: ir.Table,
        span: timedelta,
    ) -> tuple[ir.Table, ir.Table]:
        """Accounts seen on the reached hosts, and the VPN login (else the outside address
        talking to the VPN concentrator) that opened each session. Returns the sessions
        with their accounts only (enough to tell which logins opened none), and with all."""
        a = _reference(ctx, ctx.access, span, self.history_days)
        a = a.filter((a.action == "login") & ~a.object.startswith("vpn://"))
        a = a.select("ts", "user", "client_ip")
        lead = ibis.interval(seconds=int(self.login_lead_minutes * 60))
        s = sessions
        j = s.join(a, (a.client_ip == s.host) & (a.ts >= s.ts - lead) & (a.ts <= s.end_ts)).select(
            "host", "sid", account=a.user
        )
        accounts = j.group_by("host", "sid").aggregate(accounts=j.account.collect(distinct=True))
        s = _add(s, accounts)
        known = [(p.name, p.accounts) for p in providers if p.accounts]
        odd = ibis.cases(
            *((s.provider == name, s.accounts.filter(lambda u, acc=acc: ~u.isin(acc)).length() > 0)
              for name, acc in known),
            else_=False,
        ) if known else ibis.literal(False)  # fmt: skip
        s = s.mutate(odd_account=odd.fill_null(False))
        near = s.join(logins, self._during(s, logins))
        near = near.group_by("host", "sid").aggregate(
            login_ts=near.login_ts.min(), account=near.account.argmin(near.login_ts),
            source=near.source.argmin(near.login_ts),
            sources=near.source.collect(distinct=True),
            source_outside=near.source_outside.any(), login_off=near.login_off.any(),
            login_undeclared=near.account_undeclared.any(),
        )  # fmt: skip
        return s, _add(_add(s, near), self._outside_peer(ctx, providers, sessions, span))

    def _during(self, s: ir.Table, logins: ir.Table) -> ir.BooleanValue:
        """A VPN login belongs to a session: same supplier (or one of the accounts seen on
        the reached hosts) and made between just before the session and its end."""
        lead = ibis.interval(seconds=int(self.login_lead_minutes * 60))
        accounts = s.accounts.fill_null(ibis.literal([], type="array<string>"))
        return (
            (logins.login_ts >= s.ts - lead) & (logins.login_ts <= s.end_ts)
            & ((logins.login_provider == s.provider) | accounts.contains(logins.account))
        )  # fmt: skip

    def _outside_peer(
        self, ctx: Context, providers: list[Provider], s: ir.Table, span: timedelta
    ) -> ir.Table:
        """Per session, the outside address whose flows to a VPN concentrator began closest
        before it (for sites without VPN login events)."""
        vpns = [h.ip for h in ctx.inventory.hosts if (h.role or "").lower() == "vpn"]
        f = ctx.flows
        since = ctx.window.start - span - timedelta(hours=self.max_session_hours)
        f = f.filter(
            (f.ts >= since) & (f.ts < ctx.window.end) & f.dst_ip.isin(vpns or [""])
        ).select("ts", "end_ts", "src_ip")
        f = f.filter(ctx.external(f.src_ip))
        peers = f.group_by(peer=f.src_ip).aggregate(peer_ts=f.ts.min(), peer_end=f.end_ts.max())
        lead = ibis.interval(seconds=int(self.login_lead_minutes * 60))
        j = s.select("host", "sid", "ts", "end_ts", "provider").join(
            peers, (peers.peer_ts <= s.ts) & (peers.peer_end >= s.ts - lead)
        )
        j = j.mutate(
            rank=ibis.row_number().over(group_by=[j.host, j.sid], order_by=ibis.desc(j.peer_ts))
        )
        j = j.filter(j["rank"] == 0)
        ranges = [(p.name, _split(ctx.inventory, p.sources)[0]) for p in providers]
        outside = ibis.cases(
            *((j.provider == name, ~match_any(j.peer, nets)) for name, nets in ranges if nets),
            else_=False,
        ) if any(n for _, n in ranges) else ibis.literal(False)  # fmt: skip
        return j.select("host", "sid", "peer", peer_outside=outside)

    # scoring -----------------------------------------------------------------------------

    def _judge(
        self, ctx: Context, providers: list[Provider], s: ir.Table, known: ir.Table
    ) -> ir.Table:
        s = _add(s, self._lateral(ctx, known))
        source = s.source.fill_null(s.peer)
        source_outside = ibis.ifelse(
            s.source.notnull(), s.source_outside, s.peer_outside
        ).fill_null(False)
        n_lateral = s.lateral.length().fill_null(0)
        big = (
            (s.total >= self.min_volume)
            & (s.sessions >= 3)
            & (s.total >= self.volume_factor * s.usual)
        )
        odd_hosts = s.outside.length() > 0
        odd_account = s.odd_account | s.login_undeclared.fill_null(False)
        new_hosts = s.new_hosts > 0
        score = (
            ibis.ifelse(source_outside, self.weight_source, 0.0)
            + ibis.ifelse(s.off_hours | s.login_off.fill_null(False), self.weight_hours, 0.0)
            + ibis.ifelse(odd_hosts, self.weight_hosts, 0.0)
            + ibis.ifelse(odd_account, self.weight_account, 0.0)
            + ibis.ifelse(n_lateral > 0, self.weight_lateral, 0.0)
            + ibis.ifelse(new_hosts & s.seen_before, self.weight_new_host, 0.0)
            + ibis.ifelse(big, self.weight_volume, 0.0)
        )
        reached = s.reached.concat(s.lateral.fill_null(ibis.literal([], type="array<string>")))
        out = s.select(
            host=s.host, ts=s.ts, end_ts=s.end_ts, score=ibis.least(score, 100.0),
            bytes_out=s.received.cast("int64"), destination=source,
            hosts=ibis.array([s.host]).concat(reached),
            conn_ids=s.conn_ids, provider=s.provider,
            accounts=s.accounts, account=s.account, vpn_login=s.login_ts, sources=s.sources,
            source_outside=source_outside,
            off_hours=s.off_hours | s.login_off.fill_null(False),
            reached=s.reached, outside_hosts=s.outside, undeclared_account=odd_account,
            lateral=s.lateral, new_hosts=s.new_hosts.cast("int64"),
            sent=s.sent.cast("int64"), received=s.received.cast("int64"),
            usual_session=s.usual, ports=s.ports, key=stamp(s.ts),
        )  # fmt: skip
        return out.filter(out.score >= self.min_score)

    def _lateral(self, ctx: Context, s: ir.Table) -> ir.Table:
        """New onward connections from the hosts a session reached, during the session."""
        reached = s.select("host", "sid", "ts", "end_ts", dst=s.reached.unnest())
        f = ctx.flows
        start = ctx.window.start - min(ctx.window.history, timedelta(days=self.history_days))
        stores = [(d.host, d.ports) for d in ctx.inventory.datastores if d.host]
        to_store = [
            (f.dst_ip == ip) & (f.dst_port.isin(ports) if ports else ibis.literal(True))
            for ip, ports in stores
        ]
        ports = sorted({*self.lateral_ports, *(p for _, ps in stores for p in ps)})
        onward = f.filter((f.ts >= start) & (f.ts < ctx.window.end) & f.dst_port.isin(ports))
        onward = onward.filter(
            f.dst_port.isin(self.lateral_ports) | ibis.or_(ibis.literal(False), *to_store)
        )
        # a join (not isin) with the few reached hosts: the engine filters the scan with it
        hosts = reached.select(src_ip=reached.dst).distinct()
        onward = onward.join(hosts, "src_ip")
        pairs = onward.group_by("src_ip", "dst_ip", "dst_port").aggregate(first=onward.ts.min())
        after = ibis.interval(seconds=int(self.session_gap_minutes * 60))
        j = reached.join(
            pairs,
            (pairs.src_ip == reached.dst) & (pairs.first >= reached.ts)
            & (pairs.first <= reached.end_ts + after) & (pairs.dst_ip != reached.host),
        )  # fmt: skip
        j = j.mutate(to=j.dst_ip + ":" + j.dst_port.cast("string"))
        return j.group_by("host", "sid").aggregate(
            lateral=j.dst_ip.collect(distinct=True), lateral_to=j.to.collect(distinct=True)
        )

    def _alone(self, ctx: Context, logins: ir.Table, sessions: Any, span: timedelta) -> ir.Table:
        """VPN logins with a breach that opened no session seen in the flows."""
        t = logins.filter(logins.login_ts >= ctx.window.start - span)
        if sessions is not None:
            s = sessions.select("ts", "end_ts", "provider", "accounts")
            t = t.anti_join(s, self._during(s, t))
        score = (
            ibis.ifelse(t.source_outside, self.weight_source, 0.0)
            + ibis.ifelse(t.login_off, self.weight_hours, 0.0)
            + ibis.ifelse(t.account_undeclared, self.weight_account, 0.0)
        )
        empty = ibis.literal([], type="array<string>")
        out = t.select(
            host=t.vpn, ts=t.login_ts, end_ts=t.login_ts, score=score,
            bytes_out=ibis.literal(0, type="int64"), destination=t.source,
            hosts=ibis.array([t.vpn]), conn_ids=empty, provider=t.login_provider,
            accounts=ibis.array([t.account]), account=t.account, vpn_login=t.login_ts,
            sources=ibis.array([t.source]),
            source_outside=t.source_outside, off_hours=t.login_off, reached=empty,
            outside_hosts=empty, undeclared_account=t.account_undeclared, lateral=empty,
            new_hosts=ibis.literal(0, type="int64"), sent=ibis.literal(0, type="int64"),
            received=ibis.literal(0, type="int64"),
            usual_session=ibis.null("float64"), ports=ibis.literal([], type="array<int32>"),
            key=stamp(t.login_ts),
        )  # fmt: skip
        return out.filter(out.score >= self.min_score)

    # ---- the sentence ---------------------------------------------------------------------

    def explain(self, row: Mapping[str, Any], words: Words | None = None) -> str:
        who = (
            row.get("account")
            or ", ".join(row.get("accounts") or [])
            or say(words, "provider_access.unknown_account")
        )
        source = (
            say(words, "provider_access.source", address=row["destination"])
            if row.get("destination")
            else ""
        )
        breaches = _breaches(row, words) or [say(words, "provider_access.none")]
        return say(
            words, "provider_access.sentence",
            provider=row.get("provider"), who=who, source=source, host=row["host"],
            when=moment(words, row["ts"]), breaches=say(words, "sep").join(breaches),
        )  # fmt: skip


def _breaches(row: Mapping[str, Any], words: Words | None) -> list[str]:
    """What the session did outside what its supplier declared, in words."""
    said = [
        say(words, f"provider_access.{flag}")
        for flag in ("source_outside", "off_hours")
        if row.get(flag)
    ]
    if row.get("outside_hosts"):
        hosts = ", ".join(row["outside_hosts"])
        said.append(say(words, "provider_access.outside_hosts", hosts=hosts))
    if row.get("undeclared_account"):
        said.append(say(words, "provider_access.undeclared_account"))
    if row.get("lateral"):
        said.append(say(words, "provider_access.lateral", hosts=", ".join(row["lateral"])))
    if row.get("new_hosts"):
        said.append(say(words, "provider_access.new_hosts", n=row["new_hosts"]))
    return said


def _add(session: ir.Table, facts: ir.Table) -> ir.Table:
    """``facts`` (keyed by session: ``host``, ``sid``) added to each session, if any."""
    j = session.left_join(facts, ["host", "sid"])
    return j.select(*session.columns, *(c for c in facts.columns if c not in ("host", "sid")))


def _reference(ctx: Context, table: ir.Table, span: timedelta, days: float) -> ir.Table:
    """History (at most ``days``) and window together: sessions are cut and matched over
    the whole of it, so that a session keeps its start (and its finding its id) from one
    run to the next."""
    history = min(ctx.window.history, timedelta(days=days))
    return table.filter(
        (table.ts >= ctx.window.start - span - history) & (table.ts < ctx.window.end)
    )


def _split(inventory: Inventory, networks: list[str]) -> tuple[list[str], list[str]]:
    """(outside ranges, internal ranges — the VPN pool) of a supplier's ``sources``."""
    outside: list[str] = []
    pool: list[str] = []
    for n in networks:
        net = ipaddress.ip_network(n, strict=False)
        (pool if inventory.is_internal(str(net.network_address)) else outside).append(n)
    return outside, pool


def _empty(ctx: Context) -> ir.Table:
    """No supplier in the inventory: no rows (an expression, like every other result)."""
    a = ctx.access.filter(ibis.literal(False))
    return a.select(
        host=a.host, ts=a.ts, end_ts=a.ts, score=ibis.literal(0.0),
        bytes_out=ibis.literal(0, type="int64"),
    )  # fmt: skip
