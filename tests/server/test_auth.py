"""Tokens: issued once, stored hashed, checked, revoked; roles grant what they should."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest

from hemostat.errors import ConfigError
from hemostat.server.auth import Role, Tokens, allows, digest, token_id


def test_a_token_is_stored_only_as_its_hash(home: Path) -> None:
    token, text = Tokens(home).create("dpi-db-01", Role.AGENT, ip="10.0.0.5")
    assert token_id(text) == token.id and len(token.id) == 12
    assert len(text.split("_", 2)[2]) == 43
    path = home / "secrets" / "tokens.json"
    raw = path.read_text()
    assert text not in raw and text.split("_", 2)[2] not in raw
    assert orjson.loads(raw)[0]["sha256"] == digest(text)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_verify_accepts_the_token_only(home: Path) -> None:
    tokens = Tokens(home)
    token, text = tokens.create("soc", Role.ANALYST)
    assert tokens.verify(text) == token
    forged = text[:-1] + ("A" if text[-1] != "A" else "B")
    assert tokens.verify(forged) is None
    assert tokens.verify("hst_000000000000_" + "a" * 43) is None
    assert tokens.verify("Bearer nonsense") is None


def test_a_running_collector_sees_tokens_issued_and_revoked_meanwhile(home: Path) -> None:
    serving = Tokens(home)  # the collector's view
    assert serving.all() == []
    issuer = Tokens(home)  # the CLI, in another process
    token, text = issuer.create("web-01", Role.AGENT)
    assert serving.verify(text) == token
    issuer.revoke(token.id)
    assert serving.verify(text) is None
    assert serving.get(token.id) is not None and serving.get(token.id).revoked  # type: ignore[union-attr]


def test_revoking_an_unknown_token_says_what_to_do(home: Path) -> None:
    with pytest.raises(ConfigError, match="hemostat token list"):
        Tokens(home).revoke("abcdefabcdef")


def test_a_damaged_token_file_is_a_clear_error(home: Path) -> None:
    path = home / "secrets" / "tokens.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not a token file"):
        Tokens(home).all()


@pytest.mark.parametrize(("held", "needed", "ok"), [
    (Role.AGENT, Role.AGENT, True), (Role.AGENT, Role.ANALYST, False),
    (Role.ANALYST, Role.AGENT, False), (Role.ANALYST, Role.ANALYST, True),
    (Role.ANALYST, Role.RESPONDER, False), (Role.RESPONDER, Role.ANALYST, True),
    (Role.RESPONDER, Role.ADMIN, False), (Role.ADMIN, Role.RESPONDER, True),
    (Role.ADMIN, Role.AGENT, False),
])  # fmt: skip
def test_roles(held: Role, needed: Role, ok: bool) -> None:
    assert allows(held, needed) is ok
