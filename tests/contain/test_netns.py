"""Containment applied for real in network namespaces: every client and server runs inside a
lab namespace; the figures (how fast an upload stops, bytes after the apply) are logged."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from hemostat.audit import AuditLog, Step
from hemostat.contain import apply as apply_mod
from hemostat.contain.apply import Containment, tcp_probe
from hemostat.contain.plan import plan_destination, plan_host, plan_site
from hemostat.contain.site import Site
from hemostat.schema import CommandStatus as Status
from tests.contain.lab import Lab, missing, others, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.skipif(missing() is not None, reason=str(missing()))]
log = logging.getLogger("hemostat.tests.contain")
GOLDEN = Path(__file__).with_name("golden")

HOST, COLLECTOR, INTERNET = "10.231.2.10", "10.231.2.5", "10.232.1.9"
HOST_EXT = "10.232.1.10"  # the host's address on the Internet side
HOST_SITE = Site.from_mapping({"internal": ["10.231.0.0/16"], "management": [COLLECTOR]})
OTHER_TABLES = f"""
table inet other {{
    set friends {{ type ipv4_addr; elements = {{ 10.9.9.9 }} }}
    chain in {{ type filter hook input priority 0; policy accept; ip saddr @friends accept; }}
}}
table ip early {{
    chain out {{ type filter hook output priority -100; policy accept; ip daddr {INTERNET} accept; }}
}}
"""


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Lab]:
    lab = Lab(request.node.name[5:7], tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def host_lab(lab: Lab) -> tuple[str, str, str]:
    """host <-> collector (internal), host <-> internet (external)."""
    host, col, net = lab.ns("host"), lab.ns("col"), lab.ns("net")
    lab.link(host, f"{HOST}/24", col, f"{COLLECTOR}/24")
    lab.link(host, f"{HOST_EXT}/24", net, f"{INTERNET}/24")
    return host, col, net


def test_host_isolation_stops_a_live_upload_keeps_the_collector(lab: Lab, tmp_path: Path) -> None:
    host, col, net = host_lab(lab)
    lab.nft(host, "-f", "-", stdin=OTHER_TABLES)  # another table accepts the upload first
    before_tables = others(lab, host)
    sink, _ = lab.sink(net, 9000), lab.sink(col, 8443)
    upload = lab.upload(host, INTERNET, 9000, rate=2_000_000)
    assert wait_until(lambda: sink.bytes_from(HOST_EXT) > 300_000, 10), "the upload never ran"
    containment = Containment(tmp_path / "state", lab.runner(host), AuditLog(tmp_path))
    plan = plan_host(HOST_SITE, HOST, reason="live upload", actor="pytest")

    sent, t0 = sink.bytes_from(HOST_EXT), time.time()
    outcome = containment.apply(plan, tcp_probe(COLLECTOR, 8443, 2.0, lab.runner(host)))
    took = time.time() - t0
    assert outcome.status is Status.DONE, outcome.detail
    assert outcome.killed is not None and outcome.killed.killed >= 1 and outcome.killed.supported
    assert upload.wait(timeout=5) == 3  # its socket was killed: the program knows at once
    assert wait_until(lambda: sink.quiet(HOST_EXT, 1.0), 5)
    stopped = max(0.0, sink.last_from(HOST_EXT) - t0)
    after = sink.bytes_from(HOST_EXT) - sent
    log.info("host isolation: upload stopped %.3f s after the apply began (apply took %.3f s); "
             "%d bytes reached the sink after it", stopped, took, after)  # fmt: skip
    assert stopped < 5.0

    assert lab.probes([(host, COLLECTOR, 8443), (host, INTERNET, 9000)]) == [True, False]
    assert others(lab, host) == before_tables  # the other tables are untouched...
    assert "act_" in lab.nft(host, "list", "table", "inet", "hemostat")

    assert containment.release(plan.id, "pytest").ok
    assert lab.probe(host, INTERNET, 9000)
    lab.upload(host, INTERNET, 9000, rate=2_000_000, seconds=5)
    resumed = sink.bytes_from(HOST_EXT)
    assert wait_until(lambda: sink.bytes_from(HOST_EXT) > resumed + 100_000, 5)
    assert others(lab, host) == before_tables  # ...before, during and after
    assert containment.table() is None and containment.active() == ()


SITE = Site.from_mapping({
    "internal": ["10.233.0.0/16"], "management": ["10.234.1.5"],
    "continuity": [
        {"name": "inbound-mail", "direction": "inbound", "dst": "10.233.25.25", "ports": [25]},
        {"name": "messaging", "dst": "10.233.40.40", "ports": [5222]},
    ],
})  # fmt: skip
WS, RELAY, MSG, NET, SOC = "10.233.1.10", "10.233.25.25", "10.233.40.40", "10.234.1.9", "10.234.1.5"


def site_lab(lab: Lab) -> dict[str, str]:
    """A gateway routing three LAN segments (workstation, mail relay, messaging) and the
    Internet, where the SOC's collector (management) also lives."""
    ns = {n: lab.ns(n) for n in ("gw", "ws", "relay", "msg", "net")}
    for name, address in (("ws", WS), ("relay", RELAY), ("msg", MSG)):
        gateway = ".".join(address.split(".")[:3]) + ".1"
        lab.link(ns[name], f"{address}/24", ns["gw"], f"{gateway}/24")
        lab.route(ns[name], "default", gateway)
    net_dev, _ = lab.link(ns["net"], f"{NET}/24", ns["gw"], "10.234.1.1/24")
    lab.address(ns["net"], f"{SOC}/32", net_dev)  # secondary: NET stays the source address
    lab.route(ns["net"], "10.233.0.0/16", "10.234.1.1")
    lab.forwarding(ns["gw"])
    return ns


def test_site_cut_stops_egress_keeps_mail_messaging_and_management(
    lab: Lab, tmp_path: Path
) -> None:
    ns = site_lab(lab)
    internet, relay, msg = lab.sink(ns["net"], 9000, 8443), lab.sink(ns["relay"], 25), lab.sink(
        ns["msg"], 5222)  # fmt: skip
    lab.sink(ns["ws"], 2222)
    egress = {WS: ns["ws"], RELAY: ns["relay"], MSG: ns["msg"]}
    for source in egress.values():
        lab.upload(source, NET, 9000)
    lab.upload(ns["ws"], MSG, 5222)  # internal messaging, established before the cut
    lab.upload(ns["net"], RELAY, 25)  # inbound mail, established before the cut
    assert wait_until(lambda: all(internet.bytes_from(ip) > 100_000 for ip in egress), 10)
    assert wait_until(lambda: msg.bytes_from(WS) > 100_000 and relay.bytes_from(NET) > 100_000, 5)
    containment = Containment(tmp_path / "state", lab.runner(ns["gw"]), AuditLog(tmp_path))
    plan = plan_site(SITE, reason="site-wide leak", actor="pytest")

    sent, t0 = {ip: internet.bytes_from(ip) for ip in egress}, time.time()
    outcome = containment.apply(plan, tcp_probe(SOC, 8443, 2.0, lab.runner(ns["gw"])))
    assert outcome.status is Status.DONE, outcome.detail
    assert wait_until(lambda: all(internet.quiet(ip, 1.0) for ip in egress), 5)
    for ip in egress:
        stopped = max(0.0, internet.last_from(ip) - t0)
        log.info("site cut: upload from %s stopped %.3f s after the apply began; %d bytes after",
                 ip, stopped, internet.bytes_from(ip) - sent[ip])  # fmt: skip
        assert stopped < 5.0
    kept_msg, kept_mail = msg.bytes_from(WS), relay.bytes_from(NET)
    assert wait_until(lambda: msg.bytes_from(WS) > kept_msg + 100_000, 5)  # still flowing
    assert wait_until(lambda: relay.bytes_from(NET) > kept_mail + 100_000, 5)
    assert lab.probes([
        (ns["net"], RELAY, 25),  # inbound SMTP: kept
        (ns["ws"], MSG, 5222),  # internal messaging: kept
        (ns["ws"], SOC, 8443),  # management outside: kept
        (ns["ws"], NET, 9000), (ns["relay"], NET, 9000), (ns["msg"], NET, 9000),  # egress: cut
        (ns["net"], WS, 2222),  # inbound outside continuity: cut
        (ns["relay"], NET, 8443),  # not the management address
    ]) == [True, True, True, False, False, False, False, False]  # fmt: skip

    assert containment.release(plan.id, "pytest").ok
    assert lab.probes([(ns["ws"], NET, 9000), (ns["relay"], NET, 9000), (ns["msg"], NET, 9000),
                       (ns["net"], WS, 2222)]) == [True] * 4  # fmt: skip


def test_isolation_that_cuts_the_collector_is_rolled_back(lab: Lab, tmp_path: Path) -> None:
    host, col, net = host_lab(lab)
    lab.sink(net, 9000)
    lab.sink(col, 8443)
    audit = AuditLog(tmp_path)
    containment = Containment(tmp_path / "state", lab.runner(host), audit)
    selftest = tcp_probe(COLLECTOR, 8443, 1.0, lab.runner(host))
    block = plan_destination(HOST_SITE, "10.232.1.77", actor="pytest")
    assert containment.apply(block, selftest).ok
    previous = containment.table(stateless=True)

    wrong = Site.from_mapping({"internal": ["10.231.0.0/16"], "management": ["10.231.2.99"]})
    outcome = containment.apply(plan_host(wrong, HOST, actor="pytest"), selftest)
    assert outcome.status is Status.ROLLED_BACK
    assert containment.table(stateless=True) == previous
    assert [p.id for p in containment.active()] == [block.id]
    assert lab.probes([(host, COLLECTOR, 8443), (host, INTERNET, 9000)]) == [True, True]
    steps = [(e.step, e.result.split(":")[0]) for e in audit.entries()]
    assert steps[-2:] == [(Step.APPLY, "done"), (Step.ROLLBACK, "rolled_back")]
    assert audit.verify().ok


def test_failed_apply_leaves_the_previous_state(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, net = lab.ns("host"), lab.ns("net")
    lab.link(host, f"{HOST_EXT}/24", net, f"{INTERNET}/24")
    lab.sink(net, 9000)
    containment = Containment(tmp_path / "state", lab.runner(host), AuditLog(tmp_path))
    block = plan_destination(HOST_SITE, "10.232.1.77", actor="pytest")
    assert containment.apply(block).ok
    previous, state = containment.table(stateless=True), containment.state.path.read_text()

    real = apply_mod.rules.render
    monkeypatch.setattr(
        apply_mod.rules,
        "render",
        lambda plans, resolved=None: real(plans, resolved).replace(
            "counter drop comment", "counter frobnicate comment", 1
        ),
    )
    outcome = containment.apply(plan_host(HOST_SITE, HOST, actor="pytest"))
    assert outcome.status is Status.FAILED and "frobnicate" in outcome.detail
    assert containment.table(stateless=True) == previous
    assert containment.state.path.read_text() == state
    assert lab.probe(host, INTERNET, 9000)  # no isolation slipped in


def test_containment_survives_a_restart_expires_and_refreshes_names(
    lab: Lab, tmp_path: Path
) -> None:
    host = lab.ns("host")
    answers = {"exfil.example.com": ("10.232.1.9",)}
    containment = Containment(tmp_path / "state", lab.runner(host), AuditLog(tmp_path),
                              resolver=lambda name: answers[name])  # fmt: skip
    named = plan_destination(HOST_SITE, "exfil.example.com", answers["exfil.example.com"],
                             ttl=timedelta(minutes=5), actor="pytest")  # fmt: skip
    assert containment.apply(named).ok
    applied = containment.table(stateless=True)

    lab.nft(host, "delete", "table", "inet", "hemostat")  # a reboot
    restored = Containment(tmp_path / "state", lab.runner(host), AuditLog(tmp_path))
    assert restored.restore() is not None
    assert restored.table(stateless=True) == applied

    answers["exfil.example.com"] = ("10.232.1.10",)
    assert containment.refresh() == 1
    elements = lab.nft(host, "list", "set", "inet", "hemostat", f"{named.tag}_block4")
    assert "10.232.1.9" in elements and "10.232.1.10" in elements  # the old one ages out

    assert named.expires is not None
    (expired,) = restored.expire(now=named.expires + timedelta(seconds=1))
    assert expired.ok and restored.table() is None and restored.active() == ()


@pytest.mark.parametrize("golden", sorted(p.name for p in GOLDEN.glob("*.nft")))
def test_golden_rulesets_load_in_the_kernel(lab: Lab, golden: str) -> None:
    ns = lab.ns("g")
    lab.nft(ns, "-f", str(GOLDEN / golden))
    listed = lab.nft(ns, "-s", "list", "table", "inet", "hemostat")
    assert listed.count("chain ") == (GOLDEN / golden).read_text().count("\tchain ")
