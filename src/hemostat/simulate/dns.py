"""DNS: the names the hospital resolves, and queries as rows of ``dns.log`` that share their
``uid`` with the matching ``conn.log`` row (UDP/53).

Names mix internal hosts and services, popular sites, cloud and update services, names that
do not exist, and CDN-style random-looking names (the look-alike of a DNS tunnel).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from hemostat.simulate import flows
from hemostat.simulate.flows import Flows, Uids
from hemostat.simulate.hospital import DOMAIN, Hospital
from hemostat.simulate.world import Population, World

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]

QTYPES = {"A": 1, "NULL": 10, "TXT": 16, "AAAA": 28, "SRV": 33, "HTTPS": 65}
QTYPE_NAMES = {v: k for k, v in QTYPES.items()}
RCODES = {0: "NOERROR", 3: "NXDOMAIN"}

POPULAR = (
    "google.com",
    "gstatic.com",
    "microsoft.com",
    "windows.com",
    "office.com",
    "live.com",
    "apple.com",
    "icloud.com",
    "mozilla.org",
    "wikipedia.org",
    "youtube.com",
    "linkedin.com",
    "ameli.fr",
    "sante.fr",
    "has-sante.fr",
    "service-public.fr",
    "legifrance.gouv.fr",
    "doctolib.fr",
    "vidal.fr",
    "lemonde.fr",
    "leboncoin.fr",
    "orange.fr",
    "free.fr",
    "sncf-connect.com",
    "impots.gouv.fr",
    "ansm.sante.fr",
    "cnil.fr",
    "pubmed.ncbi.nlm.nih.gov",
    "cloudflare.com",
    "amazon.fr",
    "facebook.com",
    "whatsapp.net",
    "zoom.us",
    "adobe.com",
)
CDN_SUFFIXES = (
    "a.akamaiedge.net",
    "cloudfront.net",
    "googlevideo.com",
    "azureedge.net",
    "safeframe.googlesyndication.com",
    "trafficmanager.net",
    "fastly.net",
)


@dataclass(frozen=True, slots=True)
class Names:
    """Resolvable names with what resolving them returns, aligned by index."""

    name: pa.StringArray
    qtype: npt.NDArray[np.uint16]
    rcode: U8
    answer: pa.StringArray  # "-" when none
    ttl: pa.StringArray
    resp_extra: I64  # answer bytes in the response
    internal: Population  # internal names, by popularity
    external: Population  # external names, by popularity
    cdn: Population  # the CDN-style names (counted as a look-alike)


@dataclass(frozen=True, slots=True)
class Queries:
    """Rows of ``dns.log`` (numbers as arrays, strings as Arrow arrays)."""

    ts: I64
    uid: npt.NDArray[np.uint64]
    src: I32
    sport: I32
    dst: I32
    trans_id: I32
    rtt: I64  # µs, -1 when there was no answer
    qtype: npt.NDArray[np.uint16]
    rcode: U8
    query: pa.Array
    answer: pa.Array
    ttl: pa.Array

    def __len__(self) -> int:
        return len(self.ts)


def empty() -> Queries:
    z = np.zeros(0, np.int64)
    s = pa.array([], pa.string())
    return Queries(
        z,
        z.astype(np.uint64),
        z.astype(np.int32),
        z.astype(np.int32),
        z.astype(np.int32),
        z.astype(np.int32),
        z,
        z.astype(np.uint16),
        z.astype(np.uint8),
        s,
        s,
        s,
    )


def build(hospital: Hospital, world: World, ips: list[str], rng: np.random.Generator) -> Names:
    """The names of the site and of the world; ``ips`` is the address table (for answers)."""
    rows: list[tuple[str, int, int, str, int]] = []  # name, qtype, rcode, answer, extra
    count = 200 + hospital.size // 20
    for name, ip in zip(hospital.names[:count], hospital.ips[:count], strict=True):
        rows.append((f"{name}.{DOMAIN}", 1, 0, ip, 16))
    dc = f"dc-01.{DOMAIN}"
    rows += [
        (f"_ldap._tcp.dc._msdcs.{DOMAIN}", 33, 0, dc, 40),
        (f"_kerberos._tcp.{DOMAIN}", 33, 0, dc, 40),
        (f"wpad.{DOMAIN}", 1, 3, "-", 0),
        (f"isatap.{DOMAIN}", 1, 3, "-", 0),
    ]
    n_internal = len(rows)
    web = world.web.index
    for i, base in enumerate(POPULAR):
        for sub in ("www", "api", "static", "login"):
            rows.append((f"{sub}.{base}", 1, 0, ips[web[(i * 4 + len(sub)) % len(web)]], 16))
    rows += _service_names(world, ips)
    cdn_start = len(rows)
    for i, name in enumerate(_cdn_names(rng, 1000 + hospital.size // 4)):
        rows.append((name, 1, 0, ips[web[(7 * i) % len(web)]], 32))
    return _names(rows, n_internal, cdn_start)


def _service_names(world: World, ips: list[str]) -> list[tuple[str, int, int, str, int]]:
    cloud = [ips[a] for a in world.cloud]
    updates = [ips[a] for a in world.updates]
    return [
        ("outlook.office365.com", 1, 0, cloud[0], 16),
        ("login.microsoftonline.com", 1, 0, cloud[1], 16),
        ("chusimule-my.sharepoint.com", 1, 0, cloud[2], 16),
        ("onedrive.live.com", 1, 0, cloud[3], 16),
        ("download.windowsupdate.com", 1, 0, updates[0], 16),
        ("ctldl.windowsupdate.com", 1, 0, updates[1], 16),
        ("update.eset.com", 1, 0, updates[2], 16),
        ("rdv.chu-simule.fr", 1, 0, ips[world.booking], 16),
    ]


def _cdn_names(rng: np.random.Generator, n: int) -> list[str]:
    alnum = np.array(list(string.ascii_lowercase + string.digits))
    out = []
    for i in range(n):
        suffix = CDN_SUFFIXES[i % len(CDN_SUFFIXES)]
        label = "".join(rng.choice(alnum, size=int(rng.integers(8, 20))))
        out.append(f"{label}.{suffix}" if i % 3 else f"e{rng.integers(1000, 99999)}.{suffix}")
    return out


def _names(rows: list[tuple[str, int, int, str, int]], n_internal: int, cdn: int) -> Names:
    n = len(rows)
    ttl = ["-" if r[2] else f"{60 * (1 + i % 60)}.000000" for i, r in enumerate(rows)]
    internal = np.arange(n_internal, dtype=np.int32)
    external = np.arange(n_internal, n, dtype=np.int32)
    weights = 1.0 / np.arange(1, len(external) + 1) ** 0.9
    return Names(
        name=pa.array([r[0] for r in rows]),
        qtype=np.array([r[1] for r in rows], np.uint16),
        rcode=np.array([r[2] for r in rows], np.uint8),
        answer=pa.array([r[3] for r in rows]),
        ttl=pa.array(ttl),
        resp_extra=np.array([r[4] for r in rows], np.int64),
        internal=Population(internal, np.cumsum(1.0 / np.arange(1, n_internal + 1) ** 1.2)),
        external=Population(external, np.cumsum(weights)),
        cdn=Population(np.arange(cdn, n, dtype=np.int32), np.arange(1, n - cdn + 1, dtype=float)),
    )


def lookups(
    rng: np.random.Generator,
    uids: Uids,
    ts: I64,
    src: I32,
    dst: I32,
    which: I32,
    names: Names,
) -> tuple[Flows, Queries]:
    """One query per row (client ``src`` asks resolver ``dst`` for name index ``which``)."""
    n = len(ts)
    qtype = names.qtype[which].copy()
    plain_a = qtype == QTYPES["A"]
    roll = rng.random(n)
    qtype[plain_a & (roll < 0.25)] = QTYPES["AAAA"]
    qtype[plain_a & (roll > 0.96)] = QTYPES["HTTPS"]
    rcode = names.rcode[which]
    take = pa.array(which)
    answered = (qtype == names.qtype[which]) & (rcode == 0)
    answer = pc.if_else(pa.array(answered), names.answer.take(take), "-")
    ttl = pc.if_else(pa.array(answered), names.ttl.take(take), "-")
    query = names.name.take(take)
    qlen = pc.binary_length(query).to_numpy(zero_copy_only=False).astype(np.int64)
    rtt = rng.lognormal(np.log(4_000), 1.0, n).astype(np.int64) + 200
    ob = qlen + 29
    rb = ob + np.where(answered, names.resp_extra[which], 0)
    return rows(rng, uids, ts, src, dst, qtype, rcode, query, answer, ttl, rtt, ob, rb)


def rows(
    rng: np.random.Generator,
    uids: Uids,
    ts: I64,
    src: I32,
    dst: I32,
    qtype: npt.NDArray[np.uint16],
    rcode: U8,
    query: pa.Array,
    answer: pa.Array,
    ttl: pa.Array,
    rtt: I64,
    ob: I64,
    rb: I64,
) -> tuple[Flows, Queries]:
    """The conn rows and dns rows of queries, sharing uids."""
    n = len(ts)
    uid = uids.take(n)
    sport = rng.integers(49152, 65536, n).astype(np.int32)
    conn = flows.make(
        n,
        ts=ts,
        dur=rtt,
        src=src,
        sport=sport,
        dst=dst,
        dport=53,
        proto=flows.UDP,
        service=flows.SERVICE["dns"],
        ob=ob,
        rb=rb,
        uid=uid,
    )
    trans = rng.integers(0, 65536, n).astype(np.int32)
    dns = Queries(ts, uid, src, sport, dst, trans, rtt, qtype, rcode, query, answer, ttl)
    return conn, dns
