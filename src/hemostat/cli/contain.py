"""``hemostat contain host IP | site | destination ADDR``, ``contain list``, ``contain
restore``, ``hemostat release ACTION_ID`` and ``hemostat audit verify``.

Dry-run by default: the exact rules and the recent flows they would stop; ``--apply`` acts on
this machine (or, with ``--netns``, in a network namespace of it). Every step is audited.

``--apply`` and ``release`` need a responder (or admin) token (``--token``, ``--token-file``
or ``HEMOSTAT_TOKEN``). With ``--collector URL``, or when a collector runs on HOME, the
command goes through the collector's API (``POST /api/v1/contain``, ``/api/v1/release/ID``),
which sends the action to the agent that carries it out; otherwise the token is checked
against HOME's token file and the action is applied here.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table as RichTable

from hemostat.cli.base import State, app, console, err

if TYPE_CHECKING:
    from hemostat.config import Settings
    from hemostat.contain.apply import Containment, Outcome, SelfTest
    from hemostat.contain.flows import Impact
    from hemostat.contain.plan import Plan
    from hemostat.contain.site import Site

contain_app = typer.Typer(
    help="Contain: isolate a host, cut the site's Internet egress, block a destination "
    "(dry-run unless --apply).",
    no_args_is_help=True,
)
audit_app = typer.Typer(help="The hash-chained audit log of containment.", no_args_is_help=True)
app.add_typer(contain_app, name="contain")
app.add_typer(audit_app, name="audit")

Apply = Annotated[bool, typer.Option("--apply", help="Act (default: dry-run).")]
Ttl = Annotated[str | None, typer.Option(help="Release automatically after e.g. 30m, 4h.")]
Reason = Annotated[str, typer.Option(help="Why (written to the audit log).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Netns = Annotated[
    str | None, typer.Option(help="Apply inside this network namespace (labs and tests).")
]
Token = Annotated[str | None, typer.Option("--token", envvar="HEMOSTAT_TOKEN", show_envvar=True,
                                           help="Responder token (needed to act).")]  # fmt: skip
TokenFile = Annotated[Path | None, typer.Option("--token-file", help="File holding the token.")]
Collector = Annotated[str | None, typer.Option(
    "--collector", help="Go through this collector's API, e.g. https://10.1.0.5:8443 (default: "
    "the collector running on HOME, if any).")]  # fmt: skip
Ca = Annotated[Path | None, typer.Option("--ca", help="CA to trust (default HOME/pki/ca.pem).")]


@contain_app.command("host")
def contain_host(
    ip: Annotated[str, typer.Argument(help="The host to isolate.")],
    apply: Apply = False, ttl: Ttl = None, reason: Reason = "", as_json: AsJson = False,
    netns: Netns = None, token: Token = None, token_file: TokenFile = None,
    collector: Collector = None, ca: Ca = None,
) -> None:  # fmt: skip
    """Isolate a host: only loopback, the collector, internal DNS and continuity remain."""
    remote = Remote(token, token_file, collector, ca)
    _contain("host", ip, apply, ttl, reason, as_json, netns, remote)


@contain_app.command("site")
def contain_site(
    apply: Apply = False, ttl: Ttl = None, reason: Reason = "", as_json: AsJson = False,
    netns: Netns = None, token: Token = None, token_file: TokenFile = None,
    collector: Collector = None, ca: Ca = None,
) -> None:  # fmt: skip
    """Cut the site's Internet egress on this gateway, except continuity and management."""
    remote = Remote(token, token_file, collector, ca)
    _contain("site", "site", apply, ttl, reason, as_json, netns, remote)


@contain_app.command("destination")
def contain_destination(
    address: Annotated[str, typer.Argument(help="An address, a range (CIDR) or a DNS name.")],
    apply: Apply = False, ttl: Ttl = None, reason: Reason = "", as_json: AsJson = False,
    netns: Netns = None, token: Token = None, token_file: TokenFile = None,
    collector: Collector = None, ca: Ca = None,
) -> None:  # fmt: skip
    """Block a destination to and from this machine and what it forwards."""
    remote = Remote(token, token_file, collector, ca)
    _contain("destination", address, apply, ttl, reason, as_json, netns, remote)


@contain_app.command("list")
def contain_list(as_json: AsJson = False, netns: Netns = None) -> None:
    """The actions in force on this machine (from its state file)."""
    from datetime import UTC, datetime

    plans = _containment(netns).active()
    now = datetime.now(UTC)
    if as_json:
        console.print_json(json.dumps([p.as_dict() | {"expired": p.expired(now)} for p in plans]))
        return
    if not plans:
        console.print("no containment in force")
        return
    table = RichTable()
    table.add_column("id", no_wrap=True)
    for header in ("action", "since", "expires", "by", "reason"):
        table.add_column(header)
    for p in plans:
        expires = f"{p.expires:%Y-%m-%d %H:%M:%SZ}" if p.expires else "-"
        table.add_row(
            p.id,
            p.describe(),
            f"{p.created:%Y-%m-%d %H:%M:%SZ}",
            expires + (" (due)" if p.expired(now) else ""),
            p.actor,
            p.reason,
        )
    console.print(table)


@contain_app.command("restore")
def contain_restore(netns: Netns = None) -> None:
    """Release what expired, re-apply the rest (at boot, or every minute from a timer when no
    agent runs here)."""
    containment = _containment(netns)
    for outcome in containment.expire():
        console.print(f"{outcome.action}: expired, {outcome.status}")
    restored = containment.restore()
    console.print(restored.detail if restored else "nothing to restore")
    if restored and not restored.ok:
        raise typer.Exit(1)


@app.command("release")
def release(
    action_id: Annotated[str, typer.Argument(help="The action id, e.g. act-1a2b3c4d5e6f.")],
    reason: Reason = "", as_json: AsJson = False, netns: Netns = None, token: Token = None,
    token_file: TokenFile = None, collector: Collector = None, ca: Ca = None,
) -> None:  # fmt: skip
    """Release a containment action: its rules are removed, the others stay."""
    remote = Remote(token, token_file, collector, ca)
    url = remote.url() if netns is None else None
    if url is not None:
        answer = remote.call(url, f"/api/v1/release/{action_id}", {"reason": reason})
        _print_remote(answer, as_json)
        return
    outcome = _containment(netns).release(action_id, remote.local_actor(), reason)
    _print_outcome(outcome, as_json)


@audit_app.command("verify")
def audit_verify(as_json: AsJson = False) -> None:
    """Check the hash chain of the audit log: the first edited, deleted, reordered or cut
    entry is reported (exit status 1)."""
    from hemostat.audit import AuditLog

    log = AuditLog(State.home)
    verdict = log.verify()
    if as_json:
        console.print_json(json.dumps({"ok": verdict.ok, "entries": verdict.entries,
                                       "head": verdict.head, "path": str(log.path),
                                       "problem": str(verdict.problem) if verdict.problem
                                       else None}))  # fmt: skip
    elif verdict.ok:
        console.print(
            f"audit log intact: {verdict.entries} entries, head {verdict.head or '-'}",
            soft_wrap=True,
        )
    else:
        err.print(f"error: {log.path}: {verdict.problem}", markup=False)
    if not verdict.ok:
        raise typer.Exit(1)


# ---- the contain commands -------------------------------------------------------------------


def _contain(
    kind: str, target: str, apply: bool, ttl: str | None, reason: str, as_json: bool,
    netns: str | None, remote: Remote,
) -> None:  # fmt: skip
    from hemostat import config
    from hemostat.audit import AuditLog, Step
    from hemostat.contain import rules

    url = remote.url(needed=apply) if netns is None else None
    if url is not None:
        body = {"kind": kind, "target": target if kind != "site" else "", "ttl": ttl,
                "reason": reason, "apply": apply}  # fmt: skip
        _print_remote(remote.call(url, "/api/v1/contain", body), as_json)
        return
    actor = remote.local_actor() if apply else _actor()
    settings = config.load(State.home)
    plan = _plan(kind, target, ttl, reason, settings, actor)
    text = rules.render([plan])
    AuditLog(State.home).append(step=Step.PLAN, actor=plan.actor, action=plan.id,
                                kind=str(plan.kind), target=plan.target, reason=reason,
                                result="planned" + (", applying" if apply else " (dry run)"),
                                rules=text)  # fmt: skip
    outcome = None
    if apply:
        containment = _containment(netns)
        outcome = containment.apply(plan, _selftest(plan.site, settings, containment))
    impact, note = _impact(plan, settings)  # after acting: a cut must not wait for a query
    if as_json:
        console.print_json(json.dumps({
            "action": plan.as_dict(), "description": plan.describe(), "rules": text,
            "flows": impact.as_dict() if impact else None, "flows_note": note,
            "applied": _outcome_dict(outcome) if outcome else None,
        }))  # fmt: skip
    else:
        _print_plan(plan, text, impact, note, outcome)
    if outcome is not None and not outcome.ok:
        raise typer.Exit(1)


def _plan(
    kind: str, target: str, ttl: str | None, reason: str, settings: Settings, actor: str
) -> Plan:
    from hemostat.cli import _inventory
    from hemostat.contain.apply import resolve
    from hemostat.contain.plan import parse_ttl, plan_destination, plan_host, plan_site
    from hemostat.contain.site import Site

    site = Site.from_inventory(_inventory())
    common: dict[str, Any] = {"reason": reason, "actor": actor,
                              "ttl": parse_ttl(ttl) if ttl else None}  # fmt: skip
    if kind == "host":
        return plan_host(site, target, **common)
    if kind == "site":
        return plan_site(site, **common)
    literal = _is_literal(target)
    return plan_destination(
        site,
        target,
        None if literal else resolve(target),
        name_ttl=int(settings.get("contain", "name_ttl")),
        **common,
    )


def _impact(plan: Plan, settings: Settings) -> tuple[Impact | None, str | None]:
    from datetime import timedelta

    from hemostat.contain.flows import would_stop
    from hemostat.errors import StoreError
    from hemostat.store import DB_NAME, Store

    if not (State.home / DB_NAME).exists():
        return None, "no store here: flows not computed"
    lookback = timedelta(minutes=int(settings.get("contain", "lookback_minutes")))
    try:
        with Store(State.home, read_only=True) as store:
            return would_stop(store, plan, lookback), None
    except StoreError as exc:
        return None, f"flows not computed: {exc}"


def _selftest(site: Site, settings: Settings, containment: Containment) -> SelfTest | None:
    from hemostat.contain.apply import tcp_probe
    from hemostat.contain.site import display

    port = int(settings.get("contain", "selftest_port"))
    targets = [display(m) for m in site.management if "/" not in display(m)]
    if port == 0 or not targets:
        return None
    timeout = float(settings.get("contain", "selftest_timeout"))
    probes = [tcp_probe(t, port, timeout, containment.runner) for t in targets]
    return lambda: any(probe() for probe in probes)


def _containment(netns: str | None) -> Containment:
    from hemostat.audit import AuditLog
    from hemostat.contain.apply import Containment
    from hemostat.contain.runner import Runner

    if netns is None:
        return Containment(State.home / "contain", Runner(), AuditLog(State.home))
    state_dir = State.home / "contain" / "netns" / netns
    return Containment(state_dir, Runner.netns(netns), AuditLog(State.home))


# ---- through the collector, and tokens -------------------------------------------------------


class Remote:
    """The token and collector options of a command that may act."""

    def __init__(
        self, token: str | None, token_file: Path | None, collector: str | None, ca: Path | None
    ) -> None:
        self.token, self.token_file, self.collector, self.ca = token, token_file, collector, ca

    def text(self) -> str:
        from hemostat.errors import ConfigError

        if self.token_file is not None:
            try:
                return self.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"{self.token_file}: cannot read the token: {exc.strerror}"
                ) from None
        if self.token:
            return self.token.strip()
        raise ConfigError(
            "acting needs a responder token: give --token, --token-file or HEMOSTAT_TOKEN "
            "(hemostat token create NAME --role responder)"
        )

    def url(self, needed: bool = True) -> str | None:
        """The collector to go through: --collector, else one running on HOME (for a dry run,
        only when a token is given: the API needs one)."""
        if self.collector:
            return self.collector.rstrip("/")
        if not needed and not (self.token or self.token_file):
            return None
        return _running_collector(State.home)

    def local_actor(self) -> str:
        """The name of the responder token given, checked against HOME's token file."""
        from hemostat.errors import ConfigError
        from hemostat.server.auth import Role, Tokens, allows

        token = Tokens(State.home).verify(self.text())
        if token is None:
            raise ConfigError(f"the token is unknown or revoked in {State.home}/secrets")
        if not allows(token.role, Role.RESPONDER):
            raise ConfigError(f"a {token.role} token may not contain or release (needs "
                              "responder or admin)")  # fmt: skip
        return token.name

    def call(self, url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import ssl

        import httpx

        from hemostat.errors import HemostatError

        ca = self.ca or (State.home / "pki" / "ca.pem")
        verify: ssl.SSLContext | bool = True
        if url.startswith("https:") and ca.exists():
            verify = ssl.create_default_context(cafile=str(ca))
        headers = {"Authorization": f"Bearer {self.text()}"}
        try:
            with httpx.Client(base_url=url, verify=verify, timeout=60.0) as client:
                response = client.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise HemostatError(f"{url}: the collector is unreachable ({exc})") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {"error": response.text[:300]}
        if response.status_code != 200:
            field = f" ({answer.get('field')})" if answer.get("field") else ""
            raise HemostatError(f"{url}{path}: {response.status_code} "
                                f"{answer.get('error')}{field}")  # fmt: skip
        return dict(answer)


def _running_collector(home: Path) -> str | None:
    """The URL of ``hemostat serve`` running on ``home`` (it holds the store's lock), if any."""
    from hemostat.errors import StoreError
    from hemostat.store import DB_NAME, Store

    if not (home / DB_NAME).exists():
        return None
    try:
        Store(home, read_only=True).close()
        return None
    except StoreError as exc:
        pid = re.search(r"\(PID (\d+)\)", str(exc))
    try:
        argv = Path(f"/proc/{pid[1]}/cmdline").read_bytes().decode().split("\0") if pid else []
    except OSError:
        argv = []
    if "serve" not in argv or "--bind" not in argv[:-1]:
        return None
    host, _, port = argv[argv.index("--bind") + 1].rpartition(":")
    anywhere = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "::": "[::1]"}  # noqa: S104
    host = anywhere.get(host, host)
    return f"{'http' if '--insecure-http' in argv else 'https'}://{host}:{port}"


def _print_remote(answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(answer))
        return
    if "rules" in answer and not answer.get("applied"):
        console.print(f"[bold]{answer['action']['id']}[/]: {answer['description']}",
                      highlight=False)  # fmt: skip
        for warning in answer.get("warnings", []):
            err.print(f"warning: {warning}", markup=False)
        typer.echo(answer["rules"], nl=False)
        agent = answer.get("agent")
        console.print(f"carried out by agent {agent['name']}" if agent
                      else f"no agent to carry it out: {answer.get('agent_note')}",
                      markup=False)  # fmt: skip
        console.print("dry run: nothing applied; add --apply to act")
        return
    agent = answer.get("agent") or {}
    console.print(f"{answer['action']}: {answer.get('description', 'release')} sent"
                  f"{' to agent ' + agent['name'] if agent else ''} (command "
                  f"{answer['command']}); status {answer['status']}: see GET /api/v1/actions",
                  markup=False, highlight=False, soft_wrap=True)  # fmt: skip


# ---- output ---------------------------------------------------------------------------------


def _print_plan(
    plan: Plan, text: str, impact: Impact | None, note: str | None, outcome: Outcome | None
) -> None:
    from hemostat.detect.context import size

    expires = f", until {plan.expires:%Y-%m-%d %H:%M:%SZ}" if plan.expires else ""
    console.print(f"[bold]{plan.id}[/]: {plan.describe()}{expires}", highlight=False)
    for warning in plan.warnings:
        err.print(f"warning: {warning}", markup=False)
    console.print("rules (nft -f):", style="bold")
    typer.echo(text, nl=False)  # verbatim: no wrapping, tabs kept
    if impact is None:
        console.print(f"flows it would stop: {note}")
    elif impact.since is None or impact.until is None:
        console.print("flows it would stop: the store holds no flow")
    else:
        console.print(f"flows it would stop ({impact.since:%Y-%m-%d %H:%M}Z to "
                      f"{impact.until:%H:%M}Z): {impact.connections:,} connection(s), "
                      f"{size(impact.bytes_out)} out", style="bold")  # fmt: skip
        for f in impact.flows:
            console.print(
                f"  {f.src_ip} -> {f.dst_ip}:{f.dst_port} {f.proto}: "
                f"{f.connections:,} conn., {size(f.bytes_out)} out",
                highlight=False,
            )
        if impact.more:
            console.print(f"  ... and {impact.more:,} more")
    if outcome is None:
        console.print("dry run: nothing applied; add --apply to act")
    else:
        _print_outcome(outcome, False)


def _print_outcome(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(_outcome_dict(outcome)))
    elif outcome.ok:
        console.print(f"{outcome.action}: {outcome.step} {outcome.status}: {outcome.detail}")
    else:
        err.print(f"error: {outcome.action}: {outcome.step} {outcome.status}: {outcome.detail}",
                  markup=False)  # fmt: skip
    if not outcome.ok:
        raise typer.Exit(1)


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    killed = outcome.killed
    return {"action": outcome.action, "step": str(outcome.step), "status": str(outcome.status),
            "detail": outcome.detail, "rules_sha256": outcome.rules_sha256,
            "killed": None if killed is None else {"chosen": killed.chosen,
                                                   "killed": killed.killed,
                                                   "supported": killed.supported}}  # fmt: skip


def _actor() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _is_literal(target: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(target.strip(), strict=False)
    except ValueError:
        return False
    return True
