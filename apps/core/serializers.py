"""Shapes several apps share: OpenAI's cursor-paginated list page, its deletion object, a job's ``wait`` query, and
the base of request bodies that refuse fields they do not know."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from django.db.models import Model
from rest_framework import serializers

from apps.core.fields import ConstantField


# A request body that refuses a field it does not declare, as OpenAI's API does: a 400 naming the field (the first,
# sorted) instead of a misspelt option silently ignored. ``ignored_fields`` are accepted and ignored (an API's
# documented fields that change nothing here); ``unsupported_fields`` are refused as "not supported" rather than
# unknown; ``context["extra"]`` names more fields the caller reads itself. Checked after every other check, so that a
# bad value of a known field is what a request hears about first. A subclass that overrides ``validate`` ends it with
# ``return super().validate(attrs)``. Not a docstring: drf-spectacular would publish it as the description of every
# subclass's request body that has none of its own.
class KnownFieldsSerializer(serializers.Serializer):
    ignored_fields: ClassVar[frozenset[str]] = frozenset()
    unsupported_fields: ClassVar[frozenset[str]] = frozenset()

    def validate(self, attrs: Any) -> Any:
        attrs = super().validate(attrs)
        body = getattr(self, "initial_data", None)  # absent when nested: only the top-level body is checked
        if isinstance(body, Mapping):
            known = set(self.fields) | self.ignored_fields | set(self.context.get("extra", ()))
            unknown = set(body) - known
            if unknown:
                name = sorted(unknown)[0]
                reason = "is not supported" if name in self.unsupported_fields else "is not a known field"
                raise serializers.ValidationError({name: f"{name} {reason}."})
        return attrs


class WaitQuerySerializer(serializers.Serializer):
    # The schema states no minimum: with `minimum: 0` declared, schemathesis' negative phase sent `wait=0` as a
    # value "below the minimum" and failed the check when it was accepted. A negative wait is refused all the same.
    wait = serializers.FloatField(
        required=False, default=0, help_text="Seconds (0 to 30) to wait for the job to finish before answering."
    )

    def validate_wait(self, value: float) -> float:
        if value < 0:
            raise serializers.ValidationError("Ensure this value is greater than or equal to 0.", code="min_value")
        return value


class PageSerializer(serializers.Serializer):
    """A page of a list: while `has_more`, pass `last_id` as `after` for the next page."""

    # A subclass declares `data` as its items' serializer with many=True. Build it from page_of(items, has_more=...).

    object = ConstantField("list")
    data: serializers.Field = serializers.ListField()  # type: ignore[assignment]  # a field: the metaclass moves it out of the class
    first_id = serializers.CharField(allow_null=True)
    last_id = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


class DeletedSerializer(serializers.Serializer):
    """OpenAI's deletion object: the `id` and `object` kind of what was deleted, and `deleted: true`."""

    # A subclass names the kind (the ``object`` its GET answered); the body is built from {"id", "deleted"}.
    object_name: ClassVar[str]

    def get_fields(self) -> dict[str, serializers.Field]:
        # Built here rather than declared, so that ``object`` keeps its place between the other two.
        return {
            "id": serializers.CharField(),
            "object": ConstantField(self.object_name),
            "deleted": serializers.BooleanField(),
        }


def page_of(items: Sequence[Model], *, has_more: bool) -> dict[str, Any]:
    """``first_id``/``last_id`` are the cursors ``after`` takes, i.e. primary keys."""
    return {
        "data": items,
        "first_id": str(items[0].pk) if items else None,
        "last_id": str(items[-1].pk) if items else None,
        "has_more": has_more,
    }
