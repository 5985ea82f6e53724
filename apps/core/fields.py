"""Serializer fields several apps' request and response shapes share: Unix timestamps, blank-as-null strings, the
constant ``object`` tag of OpenAI-style objects, and strings that refuse other JSON types."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from drf_spectacular.drainage import set_override
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"type": "integer", "description": "Unix time in seconds"})
class UnixTimeField(serializers.ReadOnlyField):
    """A datetime as whole Unix seconds; null when unset (declared nullable unless ``allow_null=False``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"allow_null": True, **kwargs})

    def to_representation(self, value: Any) -> int | None:
        return int(value.timestamp()) if value else None


@extend_schema_field({"type": "string"})
class BlankAsNullField(serializers.ReadOnlyField):
    """A string that answers null when empty (declared nullable)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"allow_null": True, **kwargs})

    def to_representation(self, value: Any) -> Any:
        return value or None


class ConstantField(serializers.ReadOnlyField):
    """Always ``value``, e.g. an object's ``"object": "batch"``."""

    def __init__(self, value: str, **kwargs: Any) -> None:
        self.value = value
        super().__init__(source="*", **kwargs)
        set_override(self, "field", {"type": "string", "enum": [value]})

    def to_representation(self, value: Any) -> str:
        return self.value


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans, as the schema's ``type: string`` says (DRF's
    ``CharField`` turns them into strings)."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(StrictCharField, serializers.RegexField):
    """``RegexField`` that refuses non-strings (see ``StrictCharField``)."""


F = TypeVar("F", bound=serializers.Field)


def documented_as(field: F, schema: dict[str, Any]) -> F:
    """``field`` with ``schema`` as its schema: for a rule its validation states in its own words (a prompt that is
    not only white space, an enum a service checks with its own error code) that the schema should state too.
    A subclass, not an attribute: a serializer deep-copies its declared fields from their constructor arguments."""
    documented = extend_schema_field(schema)(type(f"Documented{type(field).__name__}", (type(field),), {}))
    return cast(F, documented(*vars(field)["_args"], **vars(field)["_kwargs"]))
