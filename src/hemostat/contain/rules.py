"""Plans -> the nftables text of table ``inet hemostat`` (pure and deterministic).

Each action owns its sets and base chains, named after its id (``act_1a2b..._output``), so
actions compose without ordering: a packet goes through every base chain of its hook, an
``accept`` ends only the chain it is in, and a ``drop`` in any chain is final. The text starts
with ``table inet hemostat`` / ``delete table inet hemostat``, so one ``nft -f`` replaces the
whole table in one transaction and never touches another table.

Connections are matched the NAT-proof way: packets of the original direction by destination,
reply packets by source (``ct direction``), so a continuity rule keeps both halves of the
connections it allows and nothing else.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

from hemostat.contain.plan import DNS_PORT, Kind, Plan
from hemostat.contain.site import Allow, Direction, display, network

FAMILY = "inet"
TABLE = "hemostat"
#: after conntrack (-200), mangle (-150) and DNAT (-100), before the usual filter tables (0):
#: our counters see every packet and our drops are final whatever other tables accept
PRIORITY = "filter - 10"
_L4 = "meta l4proto { tcp, udp }"
_ND = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert }"
_FAMILIES = ((4, "ip"), (6, "ip6"))

Resolved = Mapping[str, Sequence[str]]


def render(plans: Sequence[Plan], resolved: Resolved | None = None) -> str:
    """The ``nft -f`` script making table ``inet hemostat`` hold exactly ``plans`` (none: the
    table is deleted). ``resolved``: current addresses of blocked names, by name."""
    lines = [f"table {FAMILY} {TABLE}", f"delete table {FAMILY} {TABLE}"]
    if plans:
        lines.append(f"table {FAMILY} {TABLE} {{")
        for plan in sorted(plans, key=lambda p: p.id):
            lines += _action(plan, (resolved or {}).get(plan.name or "", plan.blocked))
        lines.append("}")
    return "\n".join(lines) + "\n"


def refresh(plan: Plan, addresses: Sequence[str]) -> str:
    """The ``nft -f`` script that (re)starts the timeout of a blocked name's ``addresses``
    (add, delete, add: re-adding alone would keep the old expiry); others age out."""
    lines = []
    for version, _ in _FAMILIES:
        elements = _elements(a for a in addresses if network(a).version == version)
        if elements:
            target = f"element {FAMILY} {TABLE} {plan.tag}_block{version} {{ {elements} }}"
            lines += [f"add {target}", f"delete {target}", f"add {target}"]
    return "\n".join(lines) + "\n" if lines else ""


def _action(plan: Plan, blocked: Sequence[str]) -> list[str]:
    expires = f", expires {plan.expires:%Y-%m-%dT%H:%M:%SZ}" if plan.expires else ""
    head = [f"\t# {plan.id}: {plan.describe()}{expires}"]
    if plan.kind is Kind.HOST:
        return head + _host(plan)
    if plan.kind is Kind.SITE:
        return head + _site(plan)
    return head + _destination(plan, blocked)


# ---- the three kinds ------------------------------------------------------------------------


def _host(plan: Plan) -> list[str]:
    s, t = plan.site, plan.tag
    sets = _sets(t, "internal", s.internal) if _directional(s.continuity) else []
    sets += _sets(t, "management", s.management) + _sets(t, "resolvers", s.resolvers)
    return (sets + _chain(f"{t}_input", "input", _host_rules(plan, inbound=True))
            + _chain(f"{t}_output", "output", _host_rules(plan, inbound=False)))  # fmt: skip


def _host_rules(plan: Plan, inbound: bool) -> list[str]:
    s, t, me = plan.site, plan.tag, plan.id
    lo, peer, way, port = ("iif", "saddr", "reply", "sport") if inbound else (
        "oif", "daddr", "original", "dport")  # fmt: skip
    rules = [f'{lo} "lo" accept comment "{me} loopback"']
    for v, fam in _used(s.management):
        rules.append(f'{fam} {peer} @{t}_management{v} accept comment "{me} management"')
    for v, fam in _used(s.resolvers):
        rules.append(f"ct direction {way} {fam} {peer} @{t}_resolvers{v} {_L4} th {port} "
                     f'{DNS_PORT} accept comment "{me} dns"')  # fmt: skip
    rules += _dhcp(me, inbound)
    rules.append(f'{_ND} accept comment "{me} ipv6 neighbour discovery"')
    rules += [r for a in s.continuity for r in _continuity(plan, a)]
    rules.append(f'counter drop comment "{me} isolate {plan.target}"')
    return rules


def _site(plan: Plan) -> list[str]:
    s, t = plan.site, plan.tag
    sets = _sets(t, "internal", s.internal) + _sets(t, "management", s.management)
    rules = [f'{fam} saddr @{t}_internal{v} {fam} daddr @{t}_internal{v} accept comment '
             f'"{plan.id} internal"' for v, fam in _used(s.internal)]  # fmt: skip
    rules += [f'{fam} {way} @{t}_management{v} accept comment "{plan.id} management"'
              for v, fam in _used(s.management) for way in ("saddr", "daddr")]  # fmt: skip
    rules += [r for a in s.continuity for r in _continuity(plan, a)]
    rules += [f'{fam} {way} @{t}_internal{v} counter drop comment "{plan.id} site cut {what}"'
              for v, fam in _used(s.internal)
              for way, what in (("saddr", "outbound"), ("daddr", "inbound"))]  # fmt: skip
    return sets + _chain(f"{t}_forward", "forward", rules)


def _destination(plan: Plan, blocked: Sequence[str]) -> list[str]:
    t = plan.tag
    versions = [4, 6] if plan.name else sorted({network(b).version for b in blocked})
    sets = []
    for v in versions:
        elements = _elements(b for b in blocked if network(b).version == v)
        if plan.name:
            sets += _set(f"{t}_block{v}", v, ["timeout"], elements, f"timeout {plan.name_ttl}s")
        else:
            sets += _set(f"{t}_block{v}", v, ["interval"], elements)
    fams = [(v, fam) for v, fam in _FAMILIES if v in versions]
    drop = f'counter drop comment "{plan.id} block {plan.target}"'
    chains = []
    for hook, ways in (("input", ("saddr",)), ("output", ("daddr",)),
                       ("forward", ("daddr", "saddr"))):  # fmt: skip
        chains += _chain(
            f"{t}_{hook}",
            hook,
            [f"{fam} {way} @{t}_block{v} {drop}" for way in ways for v, fam in fams],
        )
    return sets + chains


# ---- pieces ---------------------------------------------------------------------------------


def _continuity(plan: Plan, a: Allow) -> list[str]:
    """Both halves of the connections ``a`` keeps: original packets to ``a.dst`` (on its
    ports), reply packets from it; the client side checked against the internal networks."""
    v = network(a.dst).version
    fam = "ip" if v == 4 else "ip6"
    client = {Direction.OUTBOUND: "", Direction.INBOUND: "!= ", Direction.BOTH: None}[a.direction]
    out = []
    for way, server, peer, port in (
        ("original", "daddr", "saddr", "dport"),
        ("reply", "saddr", "daddr", "sport"),
    ):
        rule = f"ct direction {way}"
        if client is not None:
            rule += f" {fam} {peer} {client}@{plan.tag}_internal{v}"
        rule += f" {fam} {server} {display(a.dst)}"
        if a.ports:
            rule += f" {_L4} th {port} {{ {', '.join(map(str, a.ports))} }}"
        out.append(f'{rule} accept comment "{plan.id} continuity {_word(a.name)}"')
    return out


def _dhcp(action: str, inbound: bool) -> list[str]:
    client, server = ("67", "68") if inbound else ("68", "67")
    client6, server6 = ("547", "546") if inbound else ("546", "547")
    return [
        f'udp sport {client} udp dport {server} accept comment "{action} dhcp"',
        f'udp sport {client6} udp dport {server6} accept comment "{action} dhcpv6"',
    ]


def _directional(rules: Iterable[Allow]) -> bool:
    return any(a.direction is not Direction.BOTH for a in rules)


def _used(nets: Sequence[str]) -> list[tuple[int, str]]:
    versions = {network(n).version for n in nets}
    return [(v, fam) for v, fam in _FAMILIES if v in versions]


def _sets(tag: str, what: str, nets: Sequence[str]) -> list[str]:
    out = []
    for v, _ in _used(nets):
        out += _set(
            f"{tag}_{what}{v}",
            v,
            ["interval"],
            _elements(n for n in nets if network(n).version == v),
        )
    return out


def _set(name: str, version: int, flags: list[str], elements: str, extra: str = "") -> list[str]:
    body = [f"\t\ttype {'ipv4_addr' if version == 4 else 'ipv6_addr'}",
            f"\t\tflags {', '.join(flags)}"]  # fmt: skip
    body += [f"\t\t{extra}"] if extra else []
    body += [f"\t\telements = {{ {elements} }}"] if elements else []
    return [f"\tset {name} {{", *body, "\t}"]


def _chain(name: str, hook: str, rules: list[str]) -> list[str]:
    return [f"\tchain {name} {{",
            f"\t\ttype filter hook {hook} priority {PRIORITY}; policy accept;",
            *(f"\t\t{r}" for r in rules), "\t}"]  # fmt: skip


def _elements(nets: Iterable[str]) -> str:
    """Sorted and merged (nftables refuses overlapping intervals), single addresses bare."""
    parsed = {network(n) for n in nets}
    v4 = ipaddress.collapse_addresses(n for n in parsed if isinstance(n, ipaddress.IPv4Network))
    v6 = ipaddress.collapse_addresses(n for n in parsed if isinstance(n, ipaddress.IPv6Network))
    return ", ".join(display(str(m)) for m in [*v4, *v6])


def _word(text: str) -> str:
    """Inventory text made safe for an nftables comment (quoted, at most 128 bytes)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in text)[:48]
