"""The site secret that keys every hash of the leak index, and the keyed hashing itself.

The secret is 32 random bytes, kept as 64 hex characters in a file of mode 0600 that must not
sit in the index directory (default ``HOME/secrets/leak.key``, the index in
``HOME/leak-index``). Whoever holds the index without the secret learns nothing from it;
whoever holds both can test guesses, so the secret belongs on another medium.

A hash is HMAC-SHA256(secret, kind + 0x1F + normalised value) truncated to 128 bits.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import string
from pathlib import Path

from hemostat.leak.errors import LeakError

SECRET_BYTES = 32
HASH_BYTES = 16
_SEP = "\x1f"


def create_secret(path: Path) -> bytes:
    """Write a fresh secret to ``path`` (mode 0600, directory 0700); refuses to overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_bytes(SECRET_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LeakError(f"{path}: a secret is already there; it is never overwritten") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secret.hex() + "\n")
    return secret


def load_secret(path: Path) -> bytes:
    """The secret in ``path``: 64+ hex characters, or 32+ raw bytes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LeakError(
            f"{path}: no leak secret there; give the file the index was built with (--secret-file)"
        ) from None
    except OSError as exc:
        raise LeakError(f"{path}: cannot read the leak secret ({exc.strerror})") from None
    text = data.strip().decode("ascii", errors="replace")
    if len(text) >= 2 * SECRET_BYTES and all(c in string.hexdigits for c in text):
        return bytes.fromhex(text[: len(text) // 2 * 2])
    if len(data) >= SECRET_BYTES and not text.isascii():
        return data
    raise LeakError(f"{path}: a leak secret needs {SECRET_BYTES} random bytes (64 hex characters)")


def open_secret(path: Path, index_dir: Path, *, create: bool) -> tuple[bytes, bool]:
    """The secret in ``path`` and whether it was just created (only when ``create`` and the
    index holds nothing yet: a new secret would silently match nothing already indexed)."""
    if path.resolve().is_relative_to(index_dir.resolve()):
        raise LeakError(f"{path}: the secret must not be kept inside the index ({index_dir})")
    if path.exists() or not create:
        return load_secret(path), False
    if index_dir.is_dir() and any(index_dir.glob("*.json")):
        raise LeakError(
            f"{path}: no leak secret there, but {index_dir} already holds an index; "
            "give the secret it was built with (--secret-file)"
        )
    return create_secret(path), True


def loose(path: Path) -> bool:
    """True when group or others may read the secret file."""
    return bool(path.stat().st_mode & 0o077)


def fingerprint(secret: bytes) -> str:
    """A short keyed tag of the secret, stored with the index to tell secrets apart."""
    return hmac.new(secret, b"hemostat leak index", hashlib.sha256).hexdigest()[:16]


class Hasher:
    """Keyed hashes of identifiers and record ids under one secret."""

    def __init__(self, secret: bytes) -> None:
        self._base = hmac.new(secret, digestmod=hashlib.sha256)

    def digest(self, kind: str, value: str) -> bytes:
        h = self._base.copy()
        h.update(f"{kind}{_SEP}{value}".encode())
        return h.digest()[:HASH_BYTES]

    def record(self, datastore: str, record_id: str) -> bytes:
        return self.digest("record", f"{datastore}{_SEP}{record_id}")
