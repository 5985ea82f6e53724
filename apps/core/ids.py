"""Public object ids in OpenAI's style (``<prefix>-<random>``): opaque, unguessable, not enumerable."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, *, length: int = 24) -> str:
    return f"{prefix}-{''.join(secrets.choice(_ALPHABET) for _ in range(length))}"
