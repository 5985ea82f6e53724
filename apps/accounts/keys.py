"""API key scheme: ``tb-<prefix>.<secret>``.

``prefix`` (12 hex chars) is stored and indexed to find the row; only the SHA-256 of the whole key is stored
beside it. The secret carries 256 random bits, so a fast hash is enough (no password-style KDF needed), and the
comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "tb-"
_KEY_RE = re.compile(r"^tb-(?P<prefix>[0-9a-f]{12})\.(?P<secret>[A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class GeneratedKey:
    plaintext: str
    prefix: str
    hashed: str


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> GeneratedKey:
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}{prefix}.{secrets.token_urlsafe(32)}"
    return GeneratedKey(plaintext=plaintext, prefix=prefix, hashed=hash_key(plaintext))


def parse_prefix(plaintext: str) -> str | None:
    """The key's prefix, or None when the string is not shaped like one of our keys."""
    match = _KEY_RE.match(plaintext)
    return match.group("prefix") if match else None


def key_matches(plaintext: str, hashed: str) -> bool:
    return hmac.compare_digest(hash_key(plaintext), hashed)
