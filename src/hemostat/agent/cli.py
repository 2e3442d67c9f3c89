"""``hemostat agent`` (and ``hemostat-agent``): the agent's own light command line (argparse;
no Typer, Rich, DuckDB or Arrow)::

    hemostat agent --collector URL (--token T | --token-file F) [--ca F] [--state DIR]
                   [--interval S] [--name N] [--tail FORMAT:PATH]... [--no-sockets] [--once]
                   [--config FILE] [--gateway]
    hemostat agent install [same options] [--unit-dir DIR] [--token-path FILE]
    hemostat agent status [--state DIR] [--json]

Errors are one ``error: ...`` line on stderr and a non-zero exit; an unreachable collector is
not an error (the agent keeps spooling).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import orjson

from hemostat.agent import service
from hemostat.agent.tail import TailSpec
from hemostat.errors import ConfigError, HemostatError

log = logging.getLogger("hemostat.agent")

_TOKEN = re.compile(r"hst_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: the whole ``hemostat`` argv (global options and ``agent`` skipped) or,
    as ``hemostat-agent``, the agent's options alone."""
    home, words = _split(sys.argv[1:] if argv is None else argv)
    try:
        if words[:1] == ["install"]:
            _install(_parser(install=True).parse_args(words[1:]), home)
        elif words[:1] == ["status"]:
            _status(_status_parser().parse_args(words[1:]), home)
        else:
            _run(_parser(install=False).parse_args(words), home)
    except HemostatError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(1) from None


def _split(argv: list[str]) -> tuple[Path | None, list[str]]:
    home: Path | None = None
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--home" and i + 1 < len(argv):
            home, i = Path(argv[i + 1]), i + 2
        elif word.startswith("--home="):
            home, i = Path(word.split("=", 1)[1]), i + 1
        elif word == "agent":
            return home, argv[i + 1 :]
        else:
            break
    return home, argv[i:]


def _parser(install: bool) -> argparse.ArgumentParser:
    prog = "hemostat agent install" if install else "hemostat agent"
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0] if __doc__ else "")
    p.add_argument(
        "--collector",
        required=True,
        metavar="URL",
        help="the collector, e.g. https://collector:8443",
    )
    token = p.add_mutually_exclusive_group(required=True)
    token.add_argument("--token", help="agent token (prefer --token-file)")
    token.add_argument("--token-file", type=Path, metavar="F", help="file holding the token")
    p.add_argument("--ca", type=Path, metavar="F", help="site CA (PEM): trust only it")
    p.add_argument("--state", type=Path, metavar="DIR", help="spool and positions directory")
    p.add_argument("--interval", type=_positive, metavar="S", help="socket sampling seconds")
    p.add_argument("--name", default=socket.gethostname(), help="this host's name in flows")
    p.add_argument(
        "--tail",
        action="append",
        default=[],
        metavar="FORMAT:PATH",
        help="follow a log file (zeek_tsv, zeek_json, suricata_eve, pglog, ...)",
    )
    p.add_argument("--no-sockets", action="store_true", help="do not sample sockets")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML file with [agent] settings")
    p.add_argument(
        "--gateway",
        action="store_true",
        help="this host is the site's Linux gateway: it carries out site cuts and "
        "destination blocks",
    )
    if install:
        p.add_argument("--unit-dir", type=Path, default=service.UNIT_DIR, metavar="DIR")
        p.add_argument(
            "--token-path",
            type=Path,
            default=service.TOKEN_FILE,
            metavar="FILE",
            help="where the service reads its token (written 0600)",
        )
    else:
        p.add_argument("--once", action="store_true", help="one batch, ship, exit")
        p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p  # fmt: skip


def _status_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hemostat agent status")
    p.add_argument("--state", type=Path, metavar="DIR")
    p.add_argument("--json", action="store_true")
    return p


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def _run(args: argparse.Namespace, home: Path | None) -> None:
    from hemostat.agent.main import Agent, Options, agent_settings

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))
    token, agent_id = _token(args)
    options = Options(
        collector=_collector(args.collector), token=token, agent=agent_id,
        state=_state(args.state, home), name=args.name, ca=_ca(args.ca),
        interval=args.interval, tails=tuple(TailSpec.parse(t) for t in args.tail),
        sockets=not args.no_sockets, once=args.once, settings=agent_settings(args.config),
        gateway=args.gateway,
    )  # fmt: skip
    agent = Agent(options)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        agent.stop()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("agent %s (%s) -> %s, state %s", agent_id, args.name, options.collector,
             options.state)  # fmt: skip
    try:
        agent.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _install(args: argparse.Namespace, home: Path | None) -> None:
    token, _ = _token(args)
    state = _state(args.state, home, default=service.STATE_DIR).resolve()
    if args.token_file is None or args.token_file.resolve() != args.token_path.resolve():
        service.write_token(token, args.token_path)
    argv = [*service.executable(), "--collector", _collector(args.collector),
            "--token-file", str(args.token_path.resolve()), "--state", str(state),
            "--name", args.name]  # fmt: skip
    if args.ca:
        argv += ["--ca", str(_ca(args.ca))]
    if args.interval:
        argv += ["--interval", str(args.interval)]
    for text in args.tail:
        spec = TailSpec.parse(text)
        argv += ["--tail", f"{spec.format}:{spec.path.resolve()}"]
    if args.no_sockets:
        argv.append("--no-sockets")
    if args.config:
        argv += ["--config", str(args.config.resolve())]
    if args.gateway:
        argv.append("--gateway")
    unit = service.install(argv, args.unit_dir, state)
    sys.stdout.write(f"wrote {unit} and {args.token_path} (0600)\n"
                     f"start it: systemctl daemon-reload && systemctl enable --now "
                     f"{service.UNIT_NAME}\n")  # fmt: skip


def _status(args: argparse.Namespace, home: Path | None) -> None:
    from hemostat.agent.main import status

    found = status(_state(args.state, home))
    if args.json:
        sys.stdout.write(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for key, value in found.items():
        if key != "tails":
            sys.stdout.write(f"{key}: {value}\n")
    for path, position in found["tails"].items():
        sys.stdout.write(f"tail {path}: line {position.get('line')}, "
                         f"byte {position.get('offset')}\n")  # fmt: skip


def _token(args: argparse.Namespace) -> tuple[str, str]:
    """The token and its id; a clear error when it is unreadable or not an agent token."""
    if args.token_file is not None:
        path: Path = args.token_file
        try:
            text = path.read_text(encoding="utf-8").strip()
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the token file: {exc.strerror}") from exc
        if mode & 0o077:
            log.warning("%s can be read by other users: chmod 600 it", path)
        where = str(path)
    else:
        text, where = args.token.strip(), "--token"
    m = _TOKEN.fullmatch(text)
    if m is None:
        raise ConfigError(f"{where}: not a hemostat token (hst_<12 hex>_<secret>); issue one "
                          "with `hemostat agent enroll NAME` on the collector")  # fmt: skip
    return text, m.group(1)


def _collector(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--collector {url!r}: expected https://HOST[:PORT]")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        log.warning("--collector %s is plain http: the token crosses the network in clear",
                    url)  # fmt: skip
    return url.rstrip("/")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _ca(path: Path | None) -> Path | None:
    if path is not None and not os.access(path, os.R_OK):
        raise ConfigError(f"--ca {path}: no such readable file")
    return path.resolve() if path else None


def _state(given: Path | None, home: Path | None, default: Path | None = None) -> Path:
    if given is not None:
        return given
    if home is not None:
        return home / "agent"
    if default is not None or os.geteuid() == 0:
        return default or service.STATE_DIR
    return Path("hemostat-agent-state")


if __name__ == "__main__":
    main()
