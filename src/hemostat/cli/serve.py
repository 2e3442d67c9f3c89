"""``hemostat serve``, ``init``, ``token create|list|revoke`` and ``agent enroll``: the
collector and what it needs (the site PKI, API tokens). ``hemostat agent`` itself is the
agent's light command line (``launch.py``); only ``agent enroll`` comes here.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated

import typer
from rich.table import Table as RichTable

from hemostat.cli.base import State, app, console, err

token_app = typer.Typer(help="API tokens: agents, analysts, responders, admins.")
agent_app = typer.Typer(help="Agents (the agent itself runs as: hemostat agent --collector URL).")
app.add_typer(token_app, name="token")
app.add_typer(agent_app, name="agent")

_ROLES = "agent, analyst, responder or admin"


@app.command()
def serve(
    bind: Annotated[str, typer.Option(help="ADDR:PORT to listen on.")] = "127.0.0.1:8443",
    insecure_http: Annotated[
        bool, typer.Option("--insecure-http", help="Plain HTTP, on loopback only (tests).")
    ] = False,
    metrics_open: Annotated[
        bool, typer.Option("--metrics-open", help="Serve /metrics without a token.")
    ] = False,
) -> None:
    """Run the collector: agents' batches in (HTTPS, tokens), stored durably, live detection
    and alerts. Stops cleanly on SIGTERM or Ctrl-C."""
    from hemostat.server.run import serve as run

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip

    def announce(where: str) -> None:
        console.print(f"hemostat collector listening on {where}; store {State.home}",
                      markup=False, highlight=False, soft_wrap=True)  # fmt: skip
        sys.stdout.flush()

    run(State.home, bind, insecure_http, metrics_open, announce)


@app.command()
def init(
    name: Annotated[
        list[str] | None, typer.Option("--name", help="DNS name of the collector (repeatable).")
    ] = None,
    ip: Annotated[
        list[str] | None, typer.Option("--ip", help="IP address of the collector (repeatable).")
    ] = None,
) -> None:
    """Create the site CA and the collector's certificate under HOME/pki (the CA is kept if
    it exists: agents pin it)."""
    from hemostat.server import pki

    made, created = pki.init(State.home, tuple(name or ()), tuple(ip or ()))
    names, ips = pki.sans(made.cert)
    console.print(f"{'created' if created else 'kept'} the site CA {made.ca}", markup=False)
    console.print(f"collector certificate {made.cert} for "
                  f"{', '.join([*names, *map(str, ips)])}", markup=False)  # fmt: skip
    console.print(f"give agents the CA file: hemostat agent --ca {made.ca.name} ...", markup=False)


@agent_app.command("enroll")
def enroll(
    name: Annotated[str, typer.Argument(help="The agent's host name.")],
    ip: Annotated[str | None, typer.Option(help="The agent's address (its watch list).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print id, name and token as JSON.")] = (
        False
    ),
) -> None:
    """Issue an agent token (printed once: give it to the agent, it is not stored)."""
    _issue(name, "agent", ip, as_json)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what holds the token.")],
    role: Annotated[str, typer.Option(help=f"Role: {_ROLES}.")] = "analyst",
    as_json: Annotated[bool, typer.Option("--json", help="Print id, name and token as JSON.")] = (
        False
    ),
) -> None:
    """Issue a token (printed once; only its SHA-256 is stored)."""
    _issue(name, role, None, as_json)


def _issue(name: str, role: str, ip: str | None, as_json: bool) -> None:
    import ipaddress

    from hemostat.errors import ConfigError
    from hemostat.server.auth import Role, Tokens

    if role not in set(Role):
        raise ConfigError(f"--role {role!r}: choose {_ROLES}")
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise ConfigError(f"--ip {ip!r}: not an IP address") from None
    token, text = Tokens(State.home).create(name, Role(role), ip)
    if as_json:
        print(json.dumps({"id": token.id, "name": token.name, "role": str(token.role),  # noqa: T201
                          "token": text}))  # fmt: skip
        return
    console.print(f"{token.role} token {token.id} for {token.name}:", markup=False)
    print(text)  # noqa: T201  (plain, never wrapped: it is copied)
    err.print("shown once: only its SHA-256 is kept")


@token_app.command("list")
def token_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Issued tokens (ids, names, roles; never the tokens themselves)."""
    from hemostat.server.auth import Tokens

    tokens = Tokens(State.home).all()
    if as_json:
        print(json.dumps([{"id": t.id, "name": t.name, "role": str(t.role),  # noqa: T201
                           "created": t.created, "revoked": t.revoked, "ip": t.ip}
                          for t in tokens]))  # fmt: skip
        return
    table = RichTable("id", "name", "role", "created", "revoked")
    for t in tokens:
        table.add_row(t.id, t.name, str(t.role), t.created, t.revoked or "")
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token (a running collector refuses it at once)."""
    from hemostat.server.auth import Tokens

    token = Tokens(State.home).revoke(token_id)
    console.print(f"revoked {token.id} ({token.name}, {token.role}) at {token.revoked}",
                  markup=False)  # fmt: skip
