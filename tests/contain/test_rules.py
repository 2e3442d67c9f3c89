"""The nftables text of each kind of action, compared with saved snapshots (golden/*.nft;
HEMOSTAT_UPDATE_GOLDEN=1 rewrites them, to be reviewed in the diff)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hemostat.contain import rules
from hemostat.contain.plan import Plan, plan_destination, plan_host, plan_site
from hemostat.contain.site import Site

GOLDEN = Path(__file__).with_name("golden")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SITE = Site.from_mapping({
    "internal": ["10.1.0.0/16", "172.16.0.0/12", "fd00::/8"],
    "management": ["10.1.0.5", "fd00::5"],
    "resolvers": ["10.1.0.53", "10.1.0.54"],
    "continuity": [
        {"name": "inbound-mail", "direction": "inbound", "dst": "10.1.0.25", "ports": [25]},
        {"name": "messaging", "dst": "10.1.0.40", "ports": [5222, 443]},
        {"name": "pacs partner", "direction": "both", "dst": "2001:db8:77::/48"},
    ],
})  # fmt: skip


def plans() -> dict[str, Plan]:
    common = {"now": NOW, "actor": "soc", "reason": "INC-1"}
    return {
        "host": plan_host(SITE, "10.1.2.10", action_id="act-0000000000a1",
                          ttl=timedelta(minutes=30), **common),
        "site": plan_site(SITE, action_id="act-0000000000b2", **common),
        "destination": plan_destination(SITE, "203.0.113.0/24", action_id="act-0000000000c3",
                                        **common),
        "destination_name": plan_destination(
            SITE, "Exfil.Example.COM.", ["198.51.100.7", "2001:db8::7", "198.51.100.7"],
            action_id="act-0000000000d4", name_ttl=300, **common),
    }  # fmt: skip


def snapshot(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.nft"
    if os.environ.get("HEMOSTAT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs; review, then HEMOSTAT_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("kind", ["host", "site", "destination", "destination_name"])
def test_each_kind_matches_its_snapshot(kind: str) -> None:
    snapshot(kind, rules.render([plans()[kind]]))


def test_actions_compose_in_id_order_whatever_the_order_given() -> None:
    all_plans = list(plans().values())
    text = rules.render(all_plans)
    assert text == rules.render(all_plans[::-1])
    snapshot("combined", text)
    for plan in all_plans:  # each action's part is exactly its own rendering
        own = rules.render([plan]).split("{", 1)[1].rsplit("}", 1)[0]
        assert own in text


def test_nothing_in_force_deletes_the_table_and_nothing_else() -> None:
    assert rules.render([]) == "table inet hemostat\ndelete table inet hemostat\n"


def test_every_rule_names_its_action_and_only_our_table_is_named() -> None:
    text = rules.render(list(plans().values()))
    verdicts = [ln for ln in text.splitlines() if " accept" in ln or " drop" in ln]
    rules_ = [ln for ln in verdicts if "policy accept" not in ln]
    assert len(rules_) > 40
    assert all('comment "act-0000000000' in ln for ln in rules_)
    tables = [line for line in text.splitlines() if "table" in line.split()]
    assert tables == ["table inet hemostat", "delete table inet hemostat", "table inet hemostat {"]


def test_a_name_refresh_restarts_timeouts_of_its_addresses_only() -> None:
    plan = plans()["destination_name"]
    script = rules.refresh(plan, ["198.51.100.9", "2001:db8::9"])
    assert script.splitlines() == [
        "add element inet hemostat act_0000000000d4_block4 { 198.51.100.9 }",
        "delete element inet hemostat act_0000000000d4_block4 { 198.51.100.9 }",
        "add element inet hemostat act_0000000000d4_block4 { 198.51.100.9 }",
        "add element inet hemostat act_0000000000d4_block6 { 2001:db8::9 }",
        "delete element inet hemostat act_0000000000d4_block6 { 2001:db8::9 }",
        "add element inet hemostat act_0000000000d4_block6 { 2001:db8::9 }",
    ]


def test_overlapping_ranges_are_merged_since_nftables_refuses_them() -> None:
    site = Site.from_mapping({"internal": ["10.0.0.0/8", "10.1.0.0/16", "10.0.0.5"],
                              "management": ["10.1.0.5"]})  # fmt: skip
    text = rules.render([plan_site(site, action_id="act-0000000000e5", now=NOW)])
    assert "elements = { 10.0.0.0/8 }" in text


def test_inventory_text_cannot_break_out_of_a_comment() -> None:
    site = Site.from_mapping({"management": ["10.1.0.5"], "continuity": [
        {"name": 'x" drop; flush ruleset #', "dst": "10.1.0.40"}]})  # fmt: skip
    text = rules.render([plan_site(site, action_id="act-0000000000f6", now=NOW)])
    assert "flush" not in text.replace("continuity x__drop__flush_ruleset__", "")
