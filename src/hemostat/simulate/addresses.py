"""The address table: every IP the simulation uses, registered once, referred to by index.

Flows carry int32 indices into this table; the writer turns them into text with one Arrow
``take``. Addresses drawn for the outside world never collide with one another, so an
attacker's "never-seen" address is never also a benign destination.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import numpy.typing as npt
import pyarrow as pa

#: where public addresses are never drawn from (private, special, documentation, multicast)
RESERVED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/3",
    )
)
INTERNAL = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


class Addresses:
    """Append-only table of IPv4 addresses (as text), with their indices."""

    def __init__(self) -> None:
        self.ips: list[str] = []
        self.index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.ips)

    def __contains__(self, ip: object) -> bool:
        return ip in self.index

    def add(self, ip: str) -> int:
        """Index of ``ip``, registering it when new."""
        found = self.index.get(ip)
        if found is None:
            found = self.index[ip] = len(self.ips)
            self.ips.append(ip)
        return found

    def add_all(self, ips: list[str]) -> npt.NDArray[np.int32]:
        return np.array([self.add(ip) for ip in ips], dtype=np.int32)

    def arrow(self) -> pa.StringArray:
        return pa.array(self.ips, type=pa.string())

    def internal(self) -> npt.NDArray[np.bool_]:
        """Per address: inside the site's private ranges."""
        return np.array(
            [any(ipaddress.ip_address(ip) in n for n in INTERNAL) for ip in self.ips], dtype=bool
        )

    def draw_public(self, rng: np.random.Generator, n: int) -> list[str]:
        """``n`` new public addresses, none reserved and none already in the table."""
        out: list[str] = []
        seen: set[str] = set()
        while len(out) < n:
            values = rng.integers(1 << 24, 0xE0000000, size=2 * (n - len(out)) + 16)
            keep = np.ones(len(values), dtype=bool)
            for r in RESERVED:
                mask = (0xFFFFFFFF << (32 - r.prefixlen)) & 0xFFFFFFFF
                keep &= (values & mask) != int(r.network_address)
            _, first = np.unique(values[keep], return_index=True)
            for value in values[keep][np.sort(first)]:
                text = str(ipaddress.IPv4Address(int(value)))
                if text not in self.index and text not in seen:
                    out.append(text)
                    seen.add(text)
                if len(out) == n:
                    break
        self.add_all(out)
        return out

    def draw_in(self, rng: np.random.Generator, network: str, n: int) -> list[str]:
        """``n`` new addresses inside ``network`` (not its first or last), none already used."""
        net = ipaddress.ip_network(network)
        span = net.num_addresses - 2
        free = [i for i in range(1, span + 1) if str(net[i]) not in self.index]
        if len(free) < n:
            raise ValueError(f"{network} has only {len(free)} unused addresses, {n} wanted")
        picks = rng.choice(len(free), size=n, replace=False)
        out = [str(net[free[int(i)]]) for i in picks]
        self.add_all(out)
        return out
