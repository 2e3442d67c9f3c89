"""Plans: what each action keeps and stops (the semantics the rules implement), and the plans
that are refused before anything is applied."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from hemostat.contain.plan import (
    Kind,
    Plan,
    parse_ttl,
    plan_destination,
    plan_host,
    plan_site,
)
from hemostat.contain.site import Site
from hemostat.errors import ContainmentError
from hemostat.inventory import Inventory

SITE = Site.from_mapping({
    "internal": ["10.1.0.0/16"], "management": ["10.1.0.5"], "resolvers": ["10.1.0.53"],
    "continuity": [
        {"name": "inbound-mail", "direction": "inbound", "dst": "10.1.0.25", "ports": [25]},
        {"name": "messaging", "dst": "10.1.0.40", "ports": [5222]},
        {"name": "partner", "direction": "both", "dst": "198.51.100.0/28", "ports": [443]},
    ],
})  # fmt: skip
EXT, WS = "203.0.113.9", "10.1.3.3"


@pytest.mark.parametrize(
    ("src", "dst", "port", "proto", "stopped"),
    [
        (WS, EXT, 443, "tcp", True),  # internal -> external
        (EXT, WS, 22, "tcp", True),  # external -> internal
        (WS, "10.1.0.40", 5222, "tcp", False),  # internal <-> internal
        (EXT, "10.1.0.25", 25, "tcp", False),  # inbound mail
        ("10.1.0.25", EXT, 25, "tcp", True),  # ... inbound only: the relay sends nothing out
        (EXT, "10.1.0.25", 587, "tcp", True),  # ... on its ports only
        (WS, "198.51.100.3", 443, "tcp", False),  # partner, both ways
        ("198.51.100.3", WS, 443, "tcp", True),  # ... to the partner's port 443 only
        ("198.51.100.3", WS, 80, "tcp", True),
        (WS, "198.51.100.3", 443, "icmp", True),  # ports mean tcp/udp
        (WS, "10.1.0.5", 8443, "tcp", False),  # management, never cut
        ("192.0.2.1", "192.0.2.2", 80, "tcp", False),  # transit, not ours
    ],
)
def test_site_cut(src: str, dst: str, port: int, proto: str, stopped: bool) -> None:
    assert plan_site(SITE).stops(src, dst, port, proto) is stopped


@pytest.mark.parametrize(
    ("src", "dst", "port", "stopped"),
    [
        ("10.1.2.10", EXT, 443, True),
        ("10.1.2.10", "10.1.9.9", 445, True),  # isolation stops internal traffic too
        (WS, "10.1.2.10", 22, True),
        ("10.1.2.10", "10.1.0.5", 8443, False),  # the collector
        ("10.1.2.10", "10.1.0.53", 53, False),  # internal DNS
        ("10.1.2.10", "10.1.0.53", 80, True),
        ("10.1.2.10", "10.1.0.40", 5222, False),  # continuity (outbound from inside)
        (WS, EXT, 443, False),  # another host: not this action's business
        ("::ffff:10.1.2.10", EXT, 443, True),  # the host in IPv4-mapped form
    ],
)
def test_host_isolation(src: str, dst: str, port: int, stopped: bool) -> None:
    assert plan_host(SITE, "10.1.2.10").stops(src, dst, port, "tcp") is stopped


def test_destination_block_stops_both_directions_of_its_range_only() -> None:
    plan = plan_destination(SITE, "203.0.113.0/24")
    assert plan.stops(WS, EXT, 443, "tcp") and plan.stops(EXT, WS, 22, "udp")
    assert not plan.stops(WS, "203.0.114.1", 443, "tcp")
    assert (plan.target, plan.blocked, plan.name) == ("203.0.113.0/24", ("203.0.113.0/24",), None)
    single = plan_destination(SITE, " 203.0.113.9 ")
    assert (single.target, single.blocked) == ("203.0.113.9", ("203.0.113.9/32",))


def test_a_name_is_blocked_by_the_addresses_it_resolves_to() -> None:
    plan = plan_destination(SITE, "Exfil.Example.com.", ["203.0.113.9", "2001:db8::9"])
    assert (plan.target, plan.name) == ("exfil.example.com", "exfil.example.com")
    assert plan.stops(WS, "2001:db8::9", 443, "tcp") and not plan.stops(WS, "203.0.113.8", 1, "")
    unresolved = plan_destination(SITE, "nothing.example.org", [])
    assert unresolved.blocked == () and "resolves to no address" in unresolved.warnings[0]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: plan_host(SITE, "10.1.0.5"), "is a management address"),
        (lambda: plan_host(Site(), "10.1.2.10"), "no management address"),
        (lambda: plan_host(SITE, "host-12"), "not an IP address"),
        (lambda: plan_destination(SITE, "10.1.0.0/24"), "covers a management address"),
        (lambda: plan_destination(SITE, "0.0.0.0/0"), "use `site`"),
        (lambda: plan_destination(SITE, "not a name!"), "neither an IP address"),
        (lambda: plan_site(SITE, ttl=timedelta(0)), "must be positive"),
        (lambda: plan_site(SITE, action_id="ACT 1"), "bad action id"),
        (lambda: Site.from_mapping({"continuity": [{"name": "x", "dst": "mail.example"}]}),
         "continuity rule 'x'"),
        (lambda: Site.from_mapping({"continuity": [{"dst": "10.1.0.1", "ports": [70000]}]}),
         "ports must be 1-65535"),
    ],
)  # fmt: skip
def test_refused_plans_say_why(make: object, message: str) -> None:
    with pytest.raises(ContainmentError, match=message):
        make()  # type: ignore[operator]


def test_warnings_for_what_the_operator_should_know() -> None:
    bare = Site.from_mapping({"internal": ["10.0.0.0/8"], "management": ["10.1.0.5"]})
    assert len(plan_site(bare).warnings) == 2  # no continuity, no IPv6 range
    assert any("no internal DNS" in w for w in plan_host(bare, "10.1.2.10").warnings)
    assert any("is internal" in w for w in plan_destination(SITE, "10.1.9.0/24").warnings)


def test_a_plan_round_trips_through_its_dict_and_expires() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    plan = plan_destination(SITE, "evil.example.net", ["203.0.113.9"], ttl=parse_ttl("30m"),
                            now=now, reason="INC-1", actor="soc", name_ttl=120)  # fmt: skip
    again = Plan.from_dict(plan.as_dict())
    assert again == plan and again.kind is Kind.DESTINATION and again.name_ttl == 120
    assert plan.expires == now + timedelta(minutes=30)
    assert not plan.expired(now + timedelta(minutes=29)) and plan.expired(plan.expires)
    with pytest.raises(ContainmentError, match="not a containment plan"):
        Plan.from_dict({"id": "act-1234"})


@pytest.mark.parametrize("text", ["", "30", "0m", "1y", "-5m"])
def test_bad_ttl(text: str) -> None:
    with pytest.raises(ContainmentError, match="bad time to live"):
        parse_ttl(text)


def test_the_inventory_gives_resolvers_by_role_and_by_key() -> None:
    inv = Inventory.model_validate({
        "site": "x", "management": ["10.1.0.5"], "resolvers": ["10.1.0.54"],
        "hosts": [{"name": "dns-1", "ip": "10.1.0.53", "role": "DNS"},
                  {"name": "db", "ip": "10.1.2.10", "role": "database"}],
        "continuity": [{"name": "mail", "direction": "inbound", "dst": "10.1.0.25", "ports": [25]}],
    })  # fmt: skip
    site = Site.from_inventory(inv)
    assert site.resolvers == ("10.1.0.53/32", "10.1.0.54/32")
    assert site.continuity[0].ports == (25,) and site.management == ("10.1.0.5/32",)
    with pytest.raises(ValueError, match="resolvers"):
        Inventory.model_validate({"site": "x", "resolvers": ["dns.example"]})


def test_the_agent_can_use_containment_without_the_heavy_stack() -> None:
    code = ("import sys, hemostat.contain.apply, hemostat.contain.plan, hemostat.audit; "
            "heavy = {'duckdb', 'pyarrow', 'pydantic', 'yaml', 'fastapi', 'ibis', 'rich'}; "
            "print(sorted(heavy & set(sys.modules)))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
