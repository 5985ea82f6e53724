"""Failures from the serving runtime as domain errors, and as JSON for the trip back from a Celery worker."""

from __future__ import annotations

from typing import Any

from workers.errors import DomainError, InternalFailure
from workers.runtime.errors import RuntimeErrorBase


def to_domain_error(exc: Exception) -> DomainError:
    """Runtime errors are domain errors already; anything else escaping generation (a ``ValueError`` from a
    tokenizer, say) is an internal failure named by its type."""
    if isinstance(exc, DomainError):
        return exc
    return InternalFailure(f"Generation failed: {type(exc).__name__}: {exc}", code="generation_failed")


def error_to_dict(exc: Exception) -> dict[str, Any]:
    """A runtime failure as a domain error's dict, to cross the Celery result (``DomainError.from_dict``)."""
    return to_domain_error(exc).to_dict()


RUNTIME_ERRORS = (RuntimeErrorBase, ValueError)
