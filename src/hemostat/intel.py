"""Indicator files: a plain list (one IP address, CIDR range, domain name or URL per line,
``#`` comments) or a STIX 2.1 bundle (indicator patterns on ``ipv4-addr``, ``ipv6-addr``,
``domain-name``, ``url`` and ``network-traffic`` references, OR-combined; the same objects
given as such or inside observed-data). Used by the ``threat_intel`` detector.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hemostat.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Indicator:
    kind: str  # "ip" (one address), "net" (a CIDR range) or "domain" (the name and below)
    value: str  # normalised: compressed address, network, or lower-case name
    source: str  # where it was read: "intel.txt:12" or a STIX object id


# ---- readers --------------------------------------------------------------------------

_DOMAIN = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}$"
)
_STIX_TYPES = {"ipv4-addr", "ipv6-addr", "domain-name", "url"}
_STIX_ATOM = re.compile(
    r"(?P<object>[a-z0-9-]+):(?P<path>[a-z0-9_.]+)\s*(?P<op>=|ISSUBSET|IN)\s*"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\((?:\s*'(?:[^'\\]|\\.)*'\s*,?)+\))"
)
_STIX_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")


def load(path: Path) -> list[Indicator]:
    """Read an indicator file (plain list or STIX 2.1 JSON); ``ConfigError`` naming the file
    and the line or STIX object id of the first bad entry."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read indicator file: {reason}") from exc
    read = _stix(path, text) if text.lstrip().startswith(("{", "[")) else _plain(path, text)
    first: dict[tuple[str, str], Indicator] = {}
    for indicator in read:  # the first source of a value listed twice names it
        first.setdefault((indicator.kind, indicator.value), indicator)
    return list(first.values())


def _plain(path: Path, text: str) -> Iterator[Indicator]:
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if any(c.isspace() for c in line):
            raise ConfigError(f"{path}:{number}: one indicator per line, got {line!r}")
        indicator = parse(line, f"{path.name}:{number}")
        if indicator is None:
            raise ConfigError(
                f"{path}:{number}: not an IP address, CIDR range, domain name or URL: {line!r}"
            )
        yield indicator


def parse(text: str, source: str) -> Indicator | None:
    """One indicator from an address, a CIDR range, a domain name or a URL (its host)."""
    value = text.strip()
    if "://" in value:
        host = urlsplit(value).hostname
        return parse(host, source) if host else None
    try:
        if "/" in value:
            net = ipaddress.ip_network(value, strict=False)
            if net.prefixlen != net.max_prefixlen:
                return Indicator("net", str(net), source)
            value = str(net.network_address)
        return Indicator("ip", ipaddress.ip_address(value).compressed, source)
    except ValueError:
        pass
    name = value.lower().removeprefix("*.").rstrip(".")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return Indicator("domain", name, source) if _DOMAIN.match(name) else None


def _stix(path: Path, text: str) -> Iterator[Indicator]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    objects = data.get("objects") if isinstance(data, dict) and "objects" in data else data
    if isinstance(objects, dict):
        objects = [objects]
    if not isinstance(objects, list):
        raise ConfigError(f"{path}: a STIX bundle has an 'objects' list")
    for obj in objects:
        if not isinstance(obj, dict):
            raise ConfigError(f"{path}: STIX objects are JSON objects, got {obj!r:.40}")
        yield from _stix_object(path, obj)


def _stix_object(path: Path, obj: dict[str, Any]) -> Iterator[Indicator]:
    ident = str(obj.get("id", obj.get("type", "?")))
    kind = obj.get("type")
    if kind == "indicator" and not obj.get("revoked"):
        if obj.get("pattern_type", "stix") != "stix":
            return
        pattern = obj.get("pattern")
        if not isinstance(pattern, str):
            raise ConfigError(f"{path}: {ident}: an indicator needs a 'pattern' string")
        yield from _pattern(path, ident, pattern)
    elif kind in _STIX_TYPES:
        yield _stix_value(path, ident, str(kind), obj.get("value"))
    elif kind == "observed-data" and isinstance(obj.get("objects"), dict):
        for inner in obj["objects"].values():
            if isinstance(inner, dict) and inner.get("type") in _STIX_TYPES:
                yield _stix_value(path, ident, inner["type"], inner.get("value"))


def _pattern(path: Path, ident: str, pattern: str) -> Iterator[Indicator]:
    """The address and name comparisons of a STIX pattern (OR-combined; other conditions
    AND-ed with an address are not checked: the address alone matches)."""
    bare = _STIX_STRING.sub("''", pattern)
    if "'" in bare.replace("''", "") or bare.count("[") != bare.count("]"):
        raise ConfigError(f"{path}: {ident}: unbalanced quotes or brackets in {pattern!r}")
    for atom in _STIX_ATOM.finditer(pattern):
        kind, where = atom["object"], atom["path"]
        if kind == "network-traffic" and where in ("dst_ref.value", "src_ref.value"):
            kind = "ipv4-addr"
        elif kind not in _STIX_TYPES or where != "value":
            continue
        for value in _STIX_STRING.findall(atom["value"]):
            yield _stix_value(path, ident, kind, re.sub(r"\\(.)", r"\1", value))


def _stix_value(path: Path, ident: str, kind: str, value: Any) -> Indicator:
    found = parse(value, ident) if isinstance(value, str) else None
    if (
        found is None
        or (kind == "domain-name" and found.kind != "domain")
        or (kind in ("ipv4-addr", "ipv6-addr") and found.kind == "domain")
    ):
        raise ConfigError(f"{path}: {ident}: not a valid {kind} value: {value!r}")
    return found
