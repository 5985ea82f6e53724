"""Job states: the status list of jobs that run once (``JobStatus``: text and image jobs, plugin ingest runs;
fine-tunes and batches follow OpenAI's longer lists), and one log line per job state change (fine-tunes, pdf2text
and summarization jobs, plugin ingests and dense builds, batches), with the request id the change happened under.

A job model opts in with ``objects = JobStateManager("status", ...)`` naming its state fields. Its changes are
caught where they are made, whether by ``save()`` or by the status-guarded ``QuerySet.update()`` the services use,
so no service has to remember a logging call.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.db import connections, models, transaction
from django.db.models import F
from django.db.models.signals import post_init, post_save

logger = logging.getLogger("tigerplatform.jobs")
_LOADED = "_job_states_loaded"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED)


def log_job_state(*, kind: str, job_id: Any, old: str | None, new: str, field: str = "status") -> None:
    logger.info(
        "%s %s %s: %s -> %s",
        kind,
        job_id,
        field,
        old,
        new,
        extra={
            "event": "job_state",
            "job_kind": kind,
            "job_id": str(job_id),
            "field": field,
            "old_status": old,
            "new_status": new,
        },
    )


class JobStateQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        fields = [f for f in _state_fields(self.model) if isinstance(kwargs.get(f), str)]
        if not fields:
            return super().update(**kwargs)
        # The rows are locked while read, so the states read are the ones the update replaces.
        features = connections[self.db].features
        with transaction.atomic(using=self.db, savepoint=False):
            if features.has_select_for_update:
                rows = (
                    self.select_for_update(of=("self",))
                    if features.has_select_for_update_of
                    else self.select_for_update()
                )
            else:
                # SQLite locks the whole file: a write first, so this transaction never has to turn a read lock
                # into a write lock (which fails at once, without the busy timeout, while another thread writes).
                super().update(**{field: F(field) for field in fields})
                rows = self
            before = list(rows.values_list("pk", *fields))
            changed = super().update(**kwargs)
        if changed:
            kind = self.model._meta.label_lower
            for pk, *olds in before:
                for field, old in zip(fields, olds, strict=True):
                    if old != kwargs[field]:
                        log_job_state(kind=kind, job_id=pk, field=field, old=old, new=kwargs[field])
        return changed


class JobStateManager(models.Manager.from_queryset(JobStateQuerySet)):  # type: ignore[misc]
    def __init__(self, *state_fields: str) -> None:
        super().__init__()
        self.state_fields = state_fields or ("status",)

    def deconstruct(self) -> tuple[bool, str | None, str | None, tuple[Any, ...], dict[str, Any]]:
        as_manager, manager_class, qs_class, _, kwargs = super().deconstruct()
        return as_manager, manager_class, qs_class, self.state_fields, kwargs


class TerminalStatusMixin:
    """A job model whose ``status`` ends in one of its ``TERMINAL`` states."""

    status: Any
    TERMINAL: tuple[str, ...]

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


def _state_fields(model: type[models.Model]) -> tuple[str, ...]:
    manager = model._default_manager
    return manager.state_fields if isinstance(manager, JobStateManager) else ()


def _remember(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    setattr(instance, _LOADED, {f: instance.__dict__.get(f) for f in _state_fields(sender)})


def _saved(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    update_fields: frozenset[str] | None = None,
    **_: Any,
) -> None:
    loaded: dict[str, Any] = getattr(instance, _LOADED, {})
    for field in _state_fields(sender):
        if update_fields is not None and field not in update_fields:
            continue
        new = instance.__dict__.get(field)
        old = None if created else loaded.get(field)
        if new is not None and new != old:
            log_job_state(kind=sender._meta.label_lower, job_id=instance.pk, field=field, old=old, new=new)
        loaded[field] = new
    setattr(instance, _LOADED, loaded)


def connect_job_state_signals() -> None:
    """For the models that opted in (app ready; the signals of an abstract base's manager need each subclass)."""
    for model in apps.get_models():
        if _state_fields(model):
            post_init.connect(_remember, sender=model, weak=False, dispatch_uid=f"job-states-{model._meta.label}")
            post_save.connect(_saved, sender=model, weak=False, dispatch_uid=f"job-states-{model._meta.label}")
