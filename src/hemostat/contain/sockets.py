"""Kill the established TCP sockets of the flows a plan stops (``ss -K``).

Dropping packets already stops a flow; killing its socket also tells the program at once (its
next call fails with ECONNABORTED) instead of leaving it to retransmit until a timeout.
``ss -K`` needs a kernel built with CONFIG_INET_DIAG_DESTROY: whether the sockets really went
away is checked by listing them again, and reported. UDP has no connection to end; a gateway's
forwarded flows have no local socket (the site cut kills nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hemostat.contain.plan import Kind, Plan
from hemostat.contain.runner import Runner
from hemostat.contain.site import ip_of

_CHUNK = 40  # sockets per ss -K call (one filter expression each)


@dataclass(frozen=True, slots=True)
class Socket:
    local: str
    lport: int
    peer: str
    pport: int
    serving: bool  # the local port is a listening port: the peer opened the connection

    def flow(self) -> tuple[str, str, int]:
        """(client, server, server port) of the connection."""
        if self.serving:
            return self.peer, self.local, self.lport
        return self.local, self.peer, self.pport


@dataclass(frozen=True, slots=True)
class Killed:
    chosen: int  # sockets of flows the plan stops
    killed: int  # of those, gone after ss -K
    supported: bool | None  # None: nothing to kill, so not known
    detail: str


def chosen(plan: Plan, sockets: Iterable[Socket]) -> list[Socket]:
    """The sockets whose connection ``plan`` stops (pure)."""
    if plan.kind is Kind.SITE:
        return []
    out = []
    for s in sockets:
        client, server, port = s.flow()
        if plan.kind is Kind.HOST:
            stopped = plan.host_keeps(client, server, port, "tcp") is None
        else:
            stopped = plan.stops(client, server, port, "tcp")
        if stopped:
            out.append(s)
    return out


def parse(text: str, listening: set[int]) -> list[Socket]:
    """Sockets from ``ss -tnH state connected`` output (the last two columns are the ends)."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local, peer = _end(fields[-2]), _end(fields[-1])
        if local and peer:
            out.append(Socket(local[0], local[1], peer[0], peer[1], local[1] in listening))
    return out


def listed(runner: Runner) -> list[Socket]:
    done = runner.run(["ss", "-tnlH"])
    listening = {end[1] for line in done.stdout.splitlines()
                 if len(line.split()) >= 4 and (end := _end(line.split()[-2]))}  # fmt: skip
    return parse(runner.run(["ss", "-tnH", "state", "connected"]).stdout, listening)


def kill(runner: Runner, plan: Plan) -> Killed:
    """Kill the sockets of the flows ``plan`` stops; say how many went, and whether ``ss -K``
    works here at all."""
    if plan.kind is Kind.SITE:
        return Killed(0, 0, None, "forwarded flows have no socket here: the drops stop them")
    doomed = chosen(plan, listed(runner))
    if not doomed:
        return Killed(0, 0, None, "no established connection to end")
    for start in range(0, len(doomed), _CHUNK):
        expression = " or ".join(_filter(s) for s in doomed[start : start + _CHUNK])
        runner.run(["ss", "-K", "-tnH", "state", "connected", expression])
    left = {_key(s) for s in listed(runner)}
    killed = sum(_key(s) not in left for s in doomed)
    detail = f"ended {killed} of {len(doomed)} established connection(s)"
    if killed == 0:
        detail += ("; ss -K ended none: the kernel lacks CONFIG_INET_DIAG_DESTROY (or ss lacks -K)"
                   ", so the blocked connections only time out")  # fmt: skip
    return Killed(len(doomed), killed, killed > 0, detail)


def _end(text: str) -> tuple[str, int] | None:
    """``10.0.0.1:443``, ``[fe80::1%eth0]:22``, ``[::ffff:10.0.0.1]:80`` -> (address, port)."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]").split("%", 1)[0]
    if not port.isdigit() or ip_of(host) is None:
        return None
    return host, int(port)


def _filter(s: Socket) -> str:
    def addr(a: str) -> str:
        return f"[{a}]" if ":" in a else a

    return (f"( src {addr(s.local)} and sport = :{s.lport} "
            f"and dst {addr(s.peer)} and dport = :{s.pport} )")  # fmt: skip


def _key(s: Socket) -> tuple[str, int, str, int]:
    return s.local, s.lport, s.peer, s.pport
