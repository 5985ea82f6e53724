"""JSON-safe dict forms of dataclasses, for values that cross a process boundary (Celery payloads and results)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Self, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class DictSerializable:
    """``to_dict`` is ``asdict`` (nested dataclasses become dicts too); ``from_dict`` rebuilds a dataclass whose
    fields are all plain values. A class with nested dataclasses or tuple fields overrides ``from_dict``, since a
    JSON round trip gives them back as dicts and lists."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(cast("DataclassInstance", self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**data)
