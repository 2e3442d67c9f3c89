"""How containment runs its commands (``nft``, ``ss``, a self-test probe): on this host, or
behind a command prefix such as ``ip netns exec NS`` (network-namespace labs and tests)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from hemostat.errors import ContainmentError

_PACKAGES = {"nft": "nftables", "ss": "iproute2", "ip": "iproute2"}


@dataclass(frozen=True, slots=True)
class Runner:
    prefix: tuple[str, ...] = ()
    timeout: float = 15.0

    @classmethod
    def netns(cls, name: str, timeout: float = 15.0) -> Runner:
        return cls(("ip", "netns", "exec", name), timeout)

    def run(
        self, argv: Sequence[str], stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (behind the prefix); a missing program or a hang is a ContainmentError,
        a non-zero exit status is the caller's to read."""
        command = [*self.prefix, *argv]
        try:
            return subprocess.run(command, input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout, check=False)  # fmt: skip
        except FileNotFoundError:
            program = command[0]
            raise ContainmentError(
                f"{program} not found on PATH; install {_PACKAGES.get(program, program)} "
                "or run without --apply"
            ) from None
        except subprocess.TimeoutExpired:
            raise ContainmentError(
                f"{' '.join(command[:6])} did not finish within {self.timeout:.0f} s"
            ) from None
