"""A job's options as a client gives them (OpenAI's ``"auto"`` included), checked against ``Hyperparameters``'
declared fields by name, type and range before a job is created."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from workers.finetune.config import ConfigError, Hyperparameters, Method

# Job options that shape the dataset split rather than training; everything else is a Hyperparameters field.
DATASET_OPTIONS = frozenset({"validation_split"})
MAX_VALIDATION_SPLIT = 0.5

_FIELD_TYPES: dict[str, Any] = get_type_hints(Hyperparameters)
_FIELD_NAMES = frozenset(f.name for f in fields(Hyperparameters))
_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}


def _kinds(hint: Any) -> tuple[type, ...]:
    """The JSON value types a field annotation admits (a Literal admits its values' type; validate() checks them)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return tuple(kind for arg in get_args(hint) for kind in _kinds(arg))
    if origin is Literal:
        return tuple({type(arg) for arg in get_args(hint)})
    return (hint,)


def _is_kind(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def hyperparameters_from(options: Mapping[str, Any], *, method: Method) -> Hyperparameters:
    """Raises ConfigError naming the first option that is unknown, of the wrong type, or out of range."""
    for name, value in options.items():
        if name not in _FIELD_NAMES:
            raise ConfigError(f"hyperparameters.{name}", f"Unknown hyperparameter {name!r}.")
        kinds = _kinds(_FIELD_TYPES[name])
        if not any(_is_kind(value, kind) for kind in kinds):
            expected = " or ".join(_KIND_NAMES.get(kind, kind.__name__) for kind in kinds)
            raise ConfigError(f"hyperparameters.{name}", f"must be {expected}, got {value!r}")
    hyperparameters = Hyperparameters(**options)
    hyperparameters.validate(method)
    return hyperparameters


def job_options(raw: Mapping[str, Any], *, method: Method, seed: int | None) -> dict[str, Any]:
    """The options a job stores: ``"auto"`` (our default) dropped, ``seed`` folded in, every name known.
    ``validation_split`` left out (or null) lets workers.finetune.prepare.validation_size decide."""
    options = {key: value for key, value in raw.items() if value != "auto"}
    split = options.pop("validation_split", None)
    if split is not None and (
        isinstance(split, bool) or not isinstance(split, int | float) or not 0 <= split <= MAX_VALIDATION_SPLIT
    ):
        raise ConfigError(
            "hyperparameters.validation_split", f"validation_split must be a number in [0, {MAX_VALIDATION_SPLIT}]."
        )
    if seed is not None:
        options["seed"] = seed
    hyperparameters_from(options, method=method)
    return options if split is None else {**options, "validation_split": split}
