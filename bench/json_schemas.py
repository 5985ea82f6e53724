"""Seeded random JSON Schemas of the kinds applications send: nested objects, arrays, enums, bounded numbers,
required and optional fields. Used by the structured-output test and bench."""

from __future__ import annotations

import random
from typing import Any

_NAMES = [
    "name",
    "title",
    "city",
    "country",
    "age",
    "price",
    "score",
    "tags",
    "items",
    "status",
    "owner",
    "address",
    "rating",
    "count",
    "email",
    "color",
    "size",
    "level",
    "notes",
    "author",
    "year",
    "kind",
]
_WORDS = ["red", "green", "blue", "small", "medium", "large", "open", "closed", "draft", "done", "low", "high"]


def _leaf(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["string", "integer", "number", "boolean", "enum", "bounded_integer", "bounded_number"])
    if kind == "enum":
        return {"type": "string", "enum": rng.sample(_WORDS, rng.randint(2, 4))}
    if kind == "bounded_integer":
        low = rng.randint(-50, 50)
        return {"type": "integer", "minimum": low, "maximum": low + rng.randint(1, 200)}
    if kind == "bounded_number":
        low = round(rng.uniform(-10, 10), 1)
        return {"type": "number", "minimum": low, "maximum": low + rng.randint(1, 100)}
    return {"type": kind}


def _node(rng: random.Random, depth: int) -> dict[str, Any]:
    roll = rng.random()
    if depth > 0 and roll < 0.3:
        return _object(rng, depth - 1)
    if depth > 0 and roll < 0.5:
        items = _node(rng, depth - 1)
        array: dict[str, Any] = {"type": "array", "items": items}
        if rng.random() < 0.5:
            array["minItems"] = 1
        return array
    return _leaf(rng)


def _object(rng: random.Random, depth: int) -> dict[str, Any]:
    names = rng.sample(_NAMES, rng.randint(1, 4))
    properties = {name: _node(rng, depth) for name in names}
    required = [name for name in names if rng.random() < 0.7] or names[:1]
    return {"type": "object", "properties": properties, "required": required}


def generate_schemas(count: int = 50, *, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` object schemas, up to three levels deep; the same seed gives the same schemas."""
    rng = random.Random(seed)
    return [_object(rng, depth=rng.randint(1, 3)) for _ in range(count)]


def prompt_for(schema: dict[str, Any]) -> str:
    fields = ", ".join(schema["properties"])
    return f"Make up a realistic example record with the fields {fields}. Reply in JSON."
