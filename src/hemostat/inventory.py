"""The site inventory (DESIGN §5): what is internal, where personal data lives, who the
suppliers are, which bulk transfers are expected and what must keep working during a cut.

Only ``site`` is required. Errors name the file, the line and the key:
``inventory.yaml:14: datastores[0].category: must be one of patient, staff, …``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hemostat.errors import ConfigError
from hemostat.schema import Category

DEFAULT_INTERNAL = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _networks(values: list[str]) -> list[str]:
    for value in values:
        ipaddress.ip_network(value, strict=False)  # raises ValueError with a clear text
    return values


class Host(_Model):
    name: str
    ip: str
    role: str | None = None

    _ip = field_validator("ip")(lambda v: str(ipaddress.ip_address(v)))


class Table(_Model):
    """One table or file of a data store, when the site knows its size: tighter scoping."""

    object: str  # the access-event object it is (or a prefix of it)
    records: int = Field(ge=0)
    subjects: int | None = Field(default=None, ge=0)
    bytes: int | None = Field(default=None, ge=0)


class Datastore(_Model):
    name: str
    host: str | None = None
    ports: list[int] = Field(default_factory=list)
    objects: list[str] = Field(default_factory=list)
    category: Category = Category.OTHER
    records: int | None = Field(default=None, ge=0)
    subjects: int | None = Field(default=None, ge=0)
    bytes: int | None = Field(default=None, ge=0)
    tables: list[Table] = Field(default_factory=list)  # optional, for tighter scoping


class Provider(_Model):
    name: str
    sources: list[str] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    hours: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")

    _nets = field_validator("sources", "hosts")(_networks)


class ExpectedTransfer(_Model):
    name: str
    src: str | list[str]  # an address or range, or a list of them (a cluster)
    dst: list[str] = Field(default_factory=list)
    ports: list[int] = Field(default_factory=list)
    daily_bytes: int | None = Field(default=None, ge=0)

    _nets = field_validator("dst")(_networks)

    @field_validator("src")
    @classmethod
    def _src(cls, value: str | list[str]) -> str | list[str]:
        _networks([value] if isinstance(value, str) else value)
        return value

    @property
    def sources(self) -> list[str]:
        return [self.src] if isinstance(self.src, str) else list(self.src)


class ContinuityRule(_Model):
    name: str
    direction: Literal["inbound", "outbound", "both"] = "outbound"
    dst: str
    ports: list[int] = Field(default_factory=list)


class Inventory(_Model):
    site: str
    timezone: str = "UTC"
    internal: list[str] = Field(default_factory=lambda: list(DEFAULT_INTERNAL))
    hosts: list[Host] = Field(default_factory=list)
    datastores: list[Datastore] = Field(default_factory=list)
    providers: list[Provider] = Field(default_factory=list)
    expected_transfers: list[ExpectedTransfer] = Field(default_factory=list)
    continuity: list[ContinuityRule] = Field(default_factory=list)
    management: list[str] = Field(default_factory=list)
    # extension (issue 7): internal DNS resolvers an isolated host keeps (port 53); hosts with
    # role dns or resolver count too. Optional; docs/containment.md
    resolvers: list[str] = Field(default_factory=list)

    _nets = field_validator("internal", "management", "resolvers")(_networks)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Paris)") from None
        return value

    def is_internal(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return any(address in ipaddress.ip_network(n, strict=False) for n in self.internal)


def load(path: Path) -> Inventory:
    """Read and validate an inventory file; raise ``ConfigError`` naming file, line and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read inventory: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an inventory is a mapping with at least 'site: NAME'")
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"]
        raise ConfigError(
            f"{path}:{_line(root, loc)}: {_dotted(loc) or 'inventory'}: {first['msg']}"
            + (f" ({len(exc.errors()) - 1} more error(s))" if len(exc.errors()) > 1 else "")
        ) from exc


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """Line (1-based) of the deepest YAML node along ``loc`` that exists."""
    line = 1 if node is None else node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is None:
                break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        else:
            break
        node, line = child, child.start_mark.line + 1
    return line
