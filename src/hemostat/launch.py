"""The ``hemostat`` command's first step: send ``hemostat agent …`` to the agent's light
command line (which imports no DuckDB, Arrow or web stack, so a server runs the agent in a
few megabytes) and everything else to the full command line.
"""

from __future__ import annotations

import sys

#: global options that take a value (written before the command)
_VALUED = {"--home"}
#: ``hemostat agent`` subcommands that run on the collector's side and need the full CLI
_SERVER_SIDE = {"enroll"}


def command(argv: list[str]) -> tuple[str | None, list[str]]:
    """The command word in ``argv`` (after global options) and the words after it."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in _VALUED:
            i += 2
        elif word.startswith("-"):
            i += 1
        else:
            return word, argv[i + 1 :]
    return None, []


def main() -> None:
    argv = sys.argv[1:]
    word, rest = command(argv)
    if word == "agent" and not (rest and rest[0] in _SERVER_SIDE):
        from hemostat.agent.cli import main as agent_main

        agent_main(argv)
        return
    from hemostat.cli import main as cli_main

    cli_main()
