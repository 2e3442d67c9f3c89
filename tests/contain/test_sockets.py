"""Which established sockets a plan kills, from ``ss`` output; and how an ``ss -K`` that kills
nothing (a kernel without CONFIG_INET_DIAG_DESTROY) is reported."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from hemostat.contain import sockets
from hemostat.contain.plan import plan_destination, plan_host, plan_site
from hemostat.contain.runner import Runner
from hemostat.contain.site import Site
from hemostat.contain.sockets import Socket

SITE = Site.from_mapping({
    "internal": ["10.1.0.0/16"], "management": ["10.1.0.5"], "resolvers": ["10.1.0.53"],
    "continuity": [{"name": "mail", "direction": "inbound", "dst": "10.1.2.10", "ports": [25]}],
})  # fmt: skip
LISTEN = """\
LISTEN 0      128          0.0.0.0:25         0.0.0.0:*
LISTEN 0      128             [::]:22            [::]:*
"""
CONNECTED = """\
ESTAB  0      0          10.1.2.10:51000  203.0.113.9:443
ESTAB  0      0          10.1.2.10:51001     10.1.0.5:8443
ESTAB  0      0          10.1.2.10:25     198.51.100.4:40000
ESTAB  0      0          10.1.2.10:51002    10.1.0.53:53
ESTAB  0      0          127.0.0.1:6000     127.0.0.1:51003
ESTAB  0      0   [::ffff:10.1.2.10]:22   [2001:db8::4]:50000
ESTAB  0      0   [fe80::1%eth0]:51004  [fe80::2%eth0]:9000
garbage line
"""


def listed() -> list[Socket]:
    return sockets.parse(CONNECTED, {25, 22})


def test_ss_output_is_parsed_with_who_opened_each_connection() -> None:
    socks = listed()
    assert len(socks) == 7
    assert socks[0] == Socket("10.1.2.10", 51000, "203.0.113.9", 443, serving=False)
    assert socks[2].flow() == ("198.51.100.4", "10.1.2.10", 25)  # the peer sent mail to us
    assert socks[5].local == "::ffff:10.1.2.10" and socks[5].serving
    assert socks[6].local == "fe80::1"


def test_host_isolation_kills_all_but_loopback_management_dns_and_continuity() -> None:
    doomed = sockets.chosen(plan_host(SITE, "10.1.2.10"), listed())
    assert [(s.peer, s.pport) for s in doomed] == [
        ("203.0.113.9", 443), ("2001:db8::4", 50000), ("fe80::2", 9000)]  # fmt: skip


def test_destination_block_kills_its_peers_only_and_a_site_cut_nothing() -> None:
    doomed = sockets.chosen(plan_destination(SITE, "203.0.113.0/24"), listed())
    assert [s.peer for s in doomed] == ["203.0.113.9"]
    assert sockets.chosen(plan_site(SITE), listed()) == []


@dataclass(frozen=True)
class FakeSs(Runner):
    """``ss`` answering from text; ``ss -K`` removes the sockets only when ``works``."""

    works: bool = True
    calls: list[list[str]] = field(default_factory=list)
    gone: set[int] = field(default_factory=set)

    def run(
        self, argv: Sequence[str], stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        if "-K" in argv and self.works:
            self.gone.update(port for port in (51000, 50000, 51004) if f":{port} " in argv[-1])
        if "-tnlH" in argv:
            return subprocess.CompletedProcess(argv, 0, LISTEN, "")
        left = [
            ln for ln in CONNECTED.splitlines() if not any(f":{p} " in f"{ln} " for p in self.gone)
        ]
        return subprocess.CompletedProcess(argv, 0, "\n".join(left), "")


def test_kill_uses_exact_tuples_and_checks_they_are_gone() -> None:
    runner = FakeSs()
    killed = sockets.kill(runner, plan_host(SITE, "10.1.2.10"))
    assert (killed.chosen, killed.killed, killed.supported) == (3, 3, True)
    (expression,) = [c[-1] for c in runner.calls if "-K" in c]
    assert "( src 10.1.2.10 and sport = :51000 and dst 203.0.113.9 and dport = :443 )" in expression
    assert "dst [2001:db8::4] and dport = :50000" in expression
    assert "8443" not in expression and "6000" not in expression


def test_a_kernel_that_cannot_destroy_sockets_is_reported() -> None:
    killed = sockets.kill(FakeSs(works=False), plan_host(SITE, "10.1.2.10"))
    assert (killed.killed, killed.supported) == (0, False)
    assert "CONFIG_INET_DIAG_DESTROY" in killed.detail


def test_nothing_to_kill_leaves_support_unknown() -> None:
    killed = sockets.kill(FakeSs(), plan_destination(SITE, "192.0.2.0/24"))
    assert (killed.chosen, killed.supported) == (0, None)
