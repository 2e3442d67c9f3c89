"""A workstation leaks a few MB through DNS: every query carries base32 payload in long
random labels under one registered domain (TXT and NULL types); the resolver forwards each
one to the domain's name server on the Internet.

The episode's rows are the workstation's own lookups (its ``destinations`` is the domain);
the resolver's forwarded queries are written too but are not part of ``bytes_out``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from hemostat.simulate import dns
from hemostat.simulate.dns import QTYPES, Queries
from hemostat.simulate.flows import SECOND, Flows
from hemostat.simulate.hospital import Role
from hemostat.simulate.plan import Context, Plan, when
from hemostat.simulate.scenarios.base import Scenario

BASE32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", np.uint8)
HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
WORDS = ("cdn-sync", "static-img", "telemetry-hub", "update-check", "azfiles", "mediacache")
TLDS = ("com", "net", "info", "xyz", "online")


@dataclass(frozen=True)
class DnsTunnel(Scenario):
    id: ClassVar[str] = "dns_tunnel"
    kind: ClassVar[str] = "dns_tunnel"
    attack: ClassVar[tuple[str, ...]] = ("T1048.003", "T1071.004", "T1132.001")
    megabytes: tuple[float, float] = (2, 8)  # payload leaked
    rate: tuple[float, float] = (3, 15)  # queries per second
    txt_share: float = 0.7  # the rest are NULL queries

    def plan(self, ctx: Context) -> Plan:
        rng = ctx.rng
        ws = int(rng.choice(ctx.hospital.by_role[Role.WORKSTATION]))
        domain = f"{rng.choice(WORDS)}{rng.integers(10, 999)}.{rng.choice(TLDS)}"
        ns = ctx.addresses.add(ctx.addresses.draw_public(rng, 1)[0])
        label = int(rng.integers(48, 63))
        carried = 2 * label * 5 // 8  # payload bytes per query (two base32 labels)
        n = int(rng.uniform(*self.megabytes) * 1e6 / carried) + 1
        rate = rng.uniform(*self.rate)
        start = when(ctx, (0, 24), int(n / rate * SECOND) + 60 * SECOND)
        ts = (start + np.cumsum(rng.exponential(SECOND / rate, n))).astype(np.int64)
        query = _names(rng, n, label, domain)
        qtype = np.where(rng.random(n) < self.txt_share, QTYPES["TXT"], QTYPES["NULL"])
        answer = _answers(rng, qtype)
        resolvers = ctx.hospital.by_role[Role.DNS]
        resolver = resolvers[0] if ws % 10 < 7 else resolvers[-1]
        asked = self._lookups(ctx, ts, ws, int(resolver), qtype, query, answer)
        forwarded = self._lookups(ctx, ts + 300, int(resolver), ns, qtype, query, answer)
        plan = Plan(flows=[asked[0], forwarded[0]], queries=[asked[1], forwarded[1]])
        plan.episodes.append(
            self.episode(
                ctx,
                asked[0],
                destinations=(domain,),
                note=f"{n} queries at {rate:.1f}/s, {carried} payload bytes each",
                extra={"domain": domain, "nameserver": ctx.ip(ns), "queries": n},
            )
        )
        return plan

    def _lookups(
        self,
        ctx: Context,
        ts: npt.NDArray[np.int64],
        src: int,
        dst: int,
        qtype: npt.NDArray[np.int64],
        query: pa.Array,
        answer: pa.Array,
    ) -> tuple[Flows, Queries]:
        n = len(ts)
        qlen = pc.binary_length(query).to_numpy(zero_copy_only=False).astype(np.int64)
        alen = pc.binary_length(answer).to_numpy(zero_copy_only=False).astype(np.int64)
        rtt = ctx.rng.lognormal(np.log(40_000), 0.5, n).astype(np.int64)
        ttl = pc.if_else(pc.equal(answer, "-"), "-", "0.000000")
        return dns.rows(
            ctx.rng,
            ctx.uids,
            ts,
            np.full(n, src, np.int32),
            np.full(n, dst, np.int32),
            qtype.astype(np.uint16),
            np.zeros(n, np.uint8),
            query,
            answer,
            ttl,
            rtt,
            qlen + 29,
            qlen + 29 + alen + 12,
        )


def _names(rng: np.random.Generator, n: int, label: int, domain: str) -> pa.Array:
    """``n`` names of two random base32 labels of ``label`` characters under ``domain``."""
    suffix = np.frombuffer(f".{domain}".encode(), np.uint8)
    width = 2 * label + 1 + len(suffix)
    out = np.empty((n, width), np.uint8)
    out[:, :label] = BASE32[rng.integers(0, 32, (n, label))]
    out[:, label] = ord(".")
    out[:, label + 1 : 2 * label + 1] = BASE32[rng.integers(0, 32, (n, label))]
    out[:, 2 * label + 1 :] = suffix
    return _strings(out)


def _answers(rng: np.random.Generator, qtype: npt.NDArray[np.int64]) -> pa.Array:
    """TXT answers carry a short hex acknowledgement; NULL answers are not shown by Zeek."""
    n = len(qtype)
    out = np.empty((n, 17), np.uint8)
    out[:, :7] = np.frombuffer(b"TXT 10 ", np.uint8)
    out[:, 7:] = HEX[rng.integers(0, 16, (n, 10))]
    return pc.if_else(pa.array(qtype == QTYPES["TXT"]), _strings(out), "-")


def _strings(matrix: npt.NDArray[np.uint8]) -> pa.Array:
    n, width = matrix.shape
    offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(matrix.tobytes()))
