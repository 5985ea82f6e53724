"""Metadata filters on ``Document.meta``: a small JSON language, validated strictly and run as a database query.

A condition is ``{"key": str, "op": str, "value": ...}``; ``{"and": [...]}`` and ``{"or": [...]}`` combine them.
``ne`` and ``nin`` also match documents without the key; comparisons (``gt`` …) follow the database's JSON ordering
(numbers with numbers, strings with strings, so ISO dates compare as dates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTransform

from workers.errors import DomainError, InvalidRequest

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_IN_VALUES = 100
MAX_KEY_CHARS = 100

SCALAR_OPS = frozenset({"eq", "ne"})
LIST_OPS = frozenset({"in", "nin"})
RANGE_OPS = frozenset({"gt", "gte", "lt", "lte"})
OPS = SCALAR_OPS | LIST_OPS | RANGE_OPS | {"exists"}


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Group:
    combinator: str  # "and" | "or"
    children: tuple[Condition | Group, ...]


Filter = Condition | Group


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int | float)


def _number_or_string(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool))


class _Parser:
    def __init__(self, param: str) -> None:
        self.param = param
        self.conditions = 0

    def fail(self, path: str, message: str) -> DomainError:
        return InvalidRequest(f"{path}: {message}", param=self.param)

    def node(self, value: Any, path: str, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise self.fail(path, f"filters nest at most {MAX_DEPTH} levels deep.")
        if not isinstance(value, dict):
            raise self.fail(path, 'expected an object: a condition or {"and"|"or": [...]}.')
        if "and" in value or "or" in value:
            if len(value) != 1:
                raise self.fail(path, 'a combinator object holds exactly one key, "and" or "or".')
            combinator, items = next(iter(value.items()))
            if not isinstance(items, list) or not items:
                raise self.fail(f"{path}.{combinator}", "expected a non-empty list of filters.")
            return Group(
                combinator=combinator,
                children=tuple(self.node(item, f"{path}.{combinator}[{i}]", depth + 1) for i, item in enumerate(items)),
            )
        return self.condition(value, path)

    def condition(self, value: dict[str, Any], path: str) -> Condition:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.fail(path, f"at most {MAX_CONDITIONS} conditions.")
        unknown = set(value) - {"key", "op", "value"}
        if unknown:
            raise self.fail(path, f"unknown field(s) {sorted(unknown)}; a condition has key, op and value.")
        key, op = value.get("key"), value.get("op")
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS or key.isdigit():
            raise self.fail(
                f"{path}.key", f"expected a metadata key: a non-numeric string of 1 to {MAX_KEY_CHARS} characters."
            )
        if op not in OPS:
            raise self.fail(f"{path}.op", f"unknown op {op!r}; one of {', '.join(sorted(OPS))}.")
        operand = value.get("value", True if op == "exists" else ...)
        if operand is ...:
            raise self.fail(f"{path}.value", f"op {op!r} needs a value.")
        if op in SCALAR_OPS and not _scalar(operand):
            raise self.fail(f"{path}.value", f"op {op!r} needs a string, number, boolean or null.")
        if op in LIST_OPS and (
            not isinstance(operand, list)
            or not 1 <= len(operand) <= MAX_IN_VALUES
            or not all(_scalar(item) for item in operand)
        ):
            raise self.fail(
                f"{path}.value", f"op {op!r} needs a list of 1 to {MAX_IN_VALUES} strings, numbers, booleans or nulls."
            )
        if op in RANGE_OPS and not _number_or_string(operand):
            raise self.fail(f"{path}.value", f"op {op!r} needs a number or a string.")
        if op == "exists" and not isinstance(operand, bool):
            raise self.fail(f"{path}.value", "op 'exists' takes true or false.")
        return Condition(key=key, op=op, value=operand)


def filters_parse(*, value: Any, param: str = "filters") -> Filter | None:
    """The validated filter tree (None for no filter); a malformed one raises ``DomainError`` naming ``param``."""
    if value is None:
        return None
    return _Parser(param).node(value, param, depth=1)


class _Compiler:
    """Each key is read through a ``KeyTransform`` alias, so a key is never parsed as a lookup path (a key
    named ``gt`` or ``a__b`` stays a key)."""

    def __init__(self) -> None:
        self.aliases: dict[str, KeyTransform] = {}
        self._by_key: dict[str, str] = {}

    def alias(self, key: str) -> str:
        if key not in self._by_key:
            self._by_key[key] = f"_meta_{len(self._by_key)}"
            self.aliases[self._by_key[key]] = KeyTransform(key, "meta")
        return self._by_key[key]

    def q(self, node: Filter) -> Q:
        if isinstance(node, Group):
            parts = [self.q(child) for child in node.children]
            combined = parts[0]
            for part in parts[1:]:
                combined = combined & part if node.combinator == "and" else combined | part
            return combined
        has_key = Q(meta__has_key=node.key)
        if node.op == "exists":
            return has_key if node.value else ~has_key
        name = self.alias(node.key)
        if node.op == "eq":
            return Q(**{name: node.value})
        if node.op == "ne":
            return ~has_key | ~Q(**{name: node.value})
        if node.op == "in":
            return Q(**{f"{name}__in": node.value})
        if node.op == "nin":
            return ~has_key | ~Q(**{f"{name}__in": node.value})
        return has_key & Q(**{f"{name}__{node.op}": node.value})


def documents_filter(*, queryset: QuerySet, filters: Filter) -> QuerySet:
    """``queryset`` (of ``Document``) narrowed to the documents whose ``meta`` satisfies ``filters``."""
    compiler = _Compiler()
    condition = compiler.q(filters)
    return queryset.alias(**compiler.aliases).filter(condition)
