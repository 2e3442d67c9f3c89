"""Supplier access: sessions of a supplier's VPN pool judged against its declared envelope
(public ranges, accounts, hosts, hours); sessions inside it, firmware pushes included, are
not reported."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from hemostat.detect.provider_access import ProviderAccess
from hemostat.inventory import Datastore, Host, Inventory, Provider
from tests.detect.conftest import DAY, HOUR, T0, Detect, event, flow

VPN, POOL, JUMP, FS, DB = "172.16.1.2", "10.99.0.27", "10.1.0.70", "10.1.8.10", "10.1.2.10"
HL7, KNOWN, STRANGER = "10.1.3.20", "203.0.113.53", "110.176.190.108"
MB = 1_000_000
MINUTE, SECOND = timedelta(minutes=1), timedelta(seconds=1)

INVENTORY = Inventory(
    site="t",
    timezone="Europe/Paris",  # T0 is 01:00 local; the supplier works 08:00-19:00 (07-18 UTC)
    hosts=[Host(name="vpn-01", ip=VPN, role="vpn"), Host(name="jump-01", ip=JUMP, role="jump")],
    datastores=[Datastore(name="dpi", host=DB, ports=[5432])],
    providers=[
        Provider(name="biomed-vendor", sources=["203.0.113.0/26", "10.99.0.0/27"],
                 accounts=["vx-support", "vx-maint"], hosts=["10.1.3.0/24"],
                 hours="08:00-19:00")
    ],
)  # fmt: skip


def session(at: Any, source: str, target: str, port: int = 3389, account: str = "vx-support",
            minutes: int = 20, sent: int = 2 * MB, logins: bool = True) -> dict[str, list[Any]]:  # fmt: skip
    """A supplier session: the tunnel from outside, the pool address working on one host."""
    flows = [flow(ts=at, end_ts=at + minutes * MINUTE, src_ip=source, dst_ip=VPN,
                  bytes_out=sent + MB, bytes_in=20 * MB)]  # fmt: skip
    for i in range(0, minutes, 5):
        flows.append(flow(ts=at + (i + 1) * MINUTE, end_ts=at + (i + 6) * MINUTE, src_ip=POOL,
                          dst_ip=target, dst_port=port, bytes_out=sent // max(minutes // 5, 1),
                          bytes_in=5 * MB, conn_id=f"S{at:%H%M}{i}"))  # fmt: skip
    access = []
    if logins:
        access = [
            event(ts=at + 5 * SECOND, host=VPN, user=account, process="openvpn", action="login",
                  object="vpn://vpn-01/", rows=None, bytes=None, client_ip=source),
            event(ts=at + 90 * SECOND, host=target, user=account, process="winlogon", action="login",
                  object=f"rdp://{target}/", rows=None, bytes=None, client_ip=POOL),
        ]  # fmt: skip
    return {"flows": flows, "access": access}


def merge(*parts: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {"flows": [r for p in parts for r in p["flows"]],
            "access": [r for p in parts for r in p["access"]]}  # fmt: skip


def test_a_night_session_from_an_unknown_address_to_the_jump_server(detect: Detect) -> None:
    at = T0 + 22 * HOUR + 23 * MINUTE  # 23:23 local
    rows = session(at, STRANGER, JUMP)
    # from the jump server, onward to a data store and a file server, never done before
    rows["flows"] += [
        flow(ts=at + 9 * MINUTE, src_ip=JUMP, dst_ip=DB, dst_port=5432, bytes_in=1_500 * MB),
        flow(ts=at + 10 * MINUTE, src_ip=JUMP, dst_ip=FS, dst_port=445, bytes_out=1_500 * MB),
    ]
    [found] = detect(ProviderAccess(), **rows, start=T0, end=T0 + DAY, inventory=INVENTORY)
    assert (found.host, found.destination) == (POOL, STRANGER)
    assert found.hosts[:2] == (POOL, JUMP) and set(found.hosts) == {POOL, JUMP, DB, FS}
    assert found.score == 100 and found.kind == "third_party_access"
    e = found.evidence
    assert e["provider"] == "biomed-vendor" and e["account"] == "vx-support"
    assert e["source_outside"] and e["off_hours"] and e["outside_hosts"] == [JUMP]
    assert sorted(e["lateral"]) == [DB, FS] and not e["undeclared_account"]
    assert found.summary.startswith(
        f"Supplier biomed-vendor session by vx-support from {STRANGER} via {POOL}"
    )
    assert "an address outside its declared ranges; outside its hours" in found.summary


def test_sessions_inside_the_envelope_are_not_reported(detect: Detect) -> None:
    day = T0 + 7 * HOUR  # 08:00 local
    rows = merge(
        session(day + 5 * MINUTE, KNOWN, HL7),
        session(day + 3 * HOUR, KNOWN, "10.1.3.21", port=22, account="vx-maint"),
        # the last one pushes a 250 MB firmware image
        session(day + 6 * HOUR, "203.0.113.44", "10.1.3.22", sent=250 * MB, minutes=40),
    )
    found = detect(ProviderAccess(), **rows, start=T0, end=T0 + DAY, inventory=INVENTORY)
    assert found == []


def test_one_breach_alone_stays_below_the_reporting_floor(detect: Detect) -> None:
    # a session that runs past closing time: reported only with min_score 0, at 25
    late = T0 + 17 * HOUR + 50 * MINUTE  # 18:50 local, for 20 minutes
    rows = session(late, KNOWN, HL7)
    assert detect(ProviderAccess(), **rows, start=T0, end=T0 + DAY, inventory=INVENTORY) == []
    [low] = detect(ProviderAccess(min_score=0), **rows, start=T0, end=T0 + DAY,
                   inventory=INVENTORY)  # fmt: skip
    assert low.score == 25 and low.evidence["off_hours"] and not low.evidence["source_outside"]


def test_without_access_events_the_source_comes_from_the_flows(detect: Detect) -> None:
    at = T0 + 12 * HOUR
    rows = session(at, STRANGER, "10.1.16.20", logins=False)
    [found] = detect(ProviderAccess(), **rows, start=T0, end=T0 + DAY, inventory=INVENTORY)
    assert found.destination == STRANGER and found.score == 35 + 25
    assert found.evidence["account"] is None and found.evidence["outside_hosts"] == ["10.1.16.20"]


def test_a_vpn_login_alone_is_judged_too(detect: Detect) -> None:
    # an undeclared account from the supplier's range at night, no session in the flows
    at = T0 + 2 * HOUR
    login = event(ts=at, host=VPN, user="admin", process="openvpn", action="login",
                  object="vpn://vpn-01/", rows=None, bytes=None, client_ip=KNOWN)  # fmt: skip
    [found] = detect(ProviderAccess(), access=[login], start=T0, end=T0 + DAY,
                     inventory=INVENTORY)  # fmt: skip
    assert (found.host, found.destination) == (VPN, KNOWN)
    assert found.score == 30 + 25 and found.evidence["undeclared_account"]
    assert "with an account it did not declare" in found.summary


def test_two_sessions_of_one_pool_address_are_two_findings(detect: Detect) -> None:
    first, second = T0 + 1 * HOUR, T0 + 3 * HOUR  # both at night, from the known range
    rows = merge(session(first, KNOWN, HL7), session(second, KNOWN, HL7))
    found = detect(ProviderAccess(), **rows, start=T0, end=T0 + DAY, inventory=INVENTORY)
    assert found == []  # off-hours alone (25) is not reported
    found = detect(ProviderAccess(min_score=20), **rows, start=T0, end=T0 + DAY,
                   inventory=INVENTORY)  # fmt: skip
    assert [f.ts for f in found] == [first + MINUTE, second + MINUTE]
    assert found[0].id != found[1].id


def test_an_inventory_without_suppliers_finds_nothing(detect: Detect) -> None:
    rows = session(T0 + 2 * HOUR, STRANGER, JUMP)
    found = detect(ProviderAccess(), **rows, start=T0, end=T0 + DAY, inventory=Inventory(site="t"))
    assert found == []


def test_every_threshold_is_documented() -> None:
    for f in dataclasses.fields(ProviderAccess):
        assert f.metadata.get("help"), f.name
