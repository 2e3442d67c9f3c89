"""The agent as a systemd service: the unit file (``packaging/hemostat-agent.service`` is this
module's output for the example arguments below) and ``hemostat agent install``.

The agent runs as root, bounded to the four capabilities it uses:

- ``CAP_NET_ADMIN``: socket-destroy events and nftables (containment);
- ``CAP_SYS_PTRACE``: ``/proc/<pid>/fd`` of every process (which process owns a socket);
- ``CAP_AUDIT_CONTROL``: ``auditctl`` read watches;
- ``CAP_DAC_READ_SEARCH``: logs it does not own (audit.log, PostgreSQL, Zeek).

Everything else is read-only (``ProtectSystem=strict``) but its state directory; its token is
read from a 0600 file, never written on the command line.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hemostat import durable
from hemostat.errors import ConfigError

UNIT_NAME = "hemostat-agent.service"
UNIT_DIR = Path("/etc/systemd/system")
TOKEN_FILE = Path("/etc/hemostat/agent.token")
STATE_DIR = Path("/var/lib/hemostat-agent")
CAPABILITIES = "CAP_NET_ADMIN CAP_SYS_PTRACE CAP_AUDIT_CONTROL CAP_DAC_READ_SEARCH"

#: the arguments ``packaging/hemostat-agent.service`` is rendered with
EXAMPLE = [
    "/usr/local/bin/hemostat-agent", "--collector", "https://collector.example.org:8443",
    "--token-file", str(TOKEN_FILE), "--ca", "/etc/hemostat/ca.pem", "--state", str(STATE_DIR),
]  # fmt: skip

_TEMPLATE = """\
# hemostat agent: telemetry of this host to the hemostat collector (docs/agent.md).
# Written by `hemostat agent install`; install it again rather than edit it.
[Unit]
Description=hemostat agent
After=network-online.target auditd.service
Wants=network-online.target

[Service]
Type=simple
ExecStart={exec_start}
Restart=always
RestartSec=5
TimeoutStopSec=30
User=root
CapabilityBoundingSet={capabilities}
AmbientCapabilities={capabilities}
NoNewPrivileges=yes
ProtectSystem=strict
StateDirectory=hemostat-agent
StateDirectoryMode=0700
{read_write}ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
UMask=0077
Nice=10
CPUQuota=25%
MemoryMax=256M

[Install]
WantedBy=multi-user.target
"""


def executable() -> list[str]:
    """How systemd starts this installation's agent."""
    script = Path(sys.executable).parent / "hemostat-agent"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "hemostat.agent.cli"]


def render(argv: list[str], state: Path = STATE_DIR) -> str:
    """The unit text for ``ExecStart=`` ``argv`` (absolute program first)."""
    if not argv or not argv[0].startswith("/"):
        raise ConfigError(f"ExecStart must start with an absolute path, not {argv[:1]}")
    extra = "" if state == STATE_DIR else f"ReadWritePaths={_quote(str(state))}\n"
    return _TEMPLATE.format(exec_start=" ".join(_quote(a) for a in argv),
                            capabilities=CAPABILITIES, read_write=extra)  # fmt: skip


def write_token(token: str, path: Path) -> None:
    """``token`` into ``path``, mode 0600 (its directory 0700 when created)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write(path, token.strip() + "\n", 0o600)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the token: {exc.strerror}") from exc


def install(argv: list[str], unit_dir: Path, state: Path = STATE_DIR) -> Path:
    """Write the unit running ``argv``; returns its path."""
    unit = unit_dir / UNIT_NAME
    try:
        unit_dir.mkdir(parents=True, exist_ok=True)
        _write(unit, render(argv, state), 0o644)
    except OSError as exc:
        raise ConfigError(f"{unit}: cannot write the unit: {exc.strerror}") from exc
    return unit


def _write(path: Path, text: str, mode: int) -> None:
    durable.replace(path, text.encode(), mode)


def _quote(arg: str) -> str:
    """One ``ExecStart=`` word: ``%`` and ``$`` escaped, quoted when it has blanks."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[\w@%+=:,./-]+", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
