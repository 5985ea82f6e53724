"""A fine-tuned model in service: brought online or offline (its LoRA adapter loaded into or unloaded from the
base's vLLM server), and deleted (its weights removed once the deletion has committed)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.utils import timezone

from apps.chat.services import upstream_adapter_load, upstream_adapter_unload
from apps.core import storage
from apps.finetune.models import FineTuneCheckpoint, FineTunedModel
from apps.finetune.selectors import fine_tuned_model_list, fine_tuned_model_spec
from apps.finetune.services.jobs import finetune_event_create
from workers.errors import DomainError, NotFound
from workers.runtime.specs import ModelSpec

logger = logging.getLogger(__name__)


def _adapter_spec(model: FineTunedModel) -> ModelSpec | None:
    """A LoRA adapter's spec on its base (None for full weights, or a base that is gone)."""
    if not model.adapter_path:
        return None
    try:
        return fine_tuned_model_spec(model=model)
    except DomainError:
        return None


def fine_tuned_model_set_online(*, model: FineTunedModel, online: bool) -> FineTunedModel:
    """Online or offline. A LoRA adapter whose base is served by vLLM (``serve_url``) is loaded into it first
    (every time: vLLM forgets adapters when it restarts); if that fails nothing changes and the call is a 502
    ``adapter_load_failed``. Going offline unloads it, best effort."""
    if online and model.is_deleted:
        raise NotFound(f"The fine-tuned model {model.name!r} was deleted.", code="model_not_found")
    spec = _adapter_spec(model)
    if online and spec is not None:
        upstream_adapter_load(spec=spec)
    if model.online != online:
        model.online = online
        model.save(update_fields=["online"])
    if not online and spec is not None:
        upstream_adapter_unload(spec=spec)
    return model


def fine_tuned_model_delete(*, model: FineTunedModel) -> FineTunedModel:
    """OpenAI's model deletion. The row is marked deleted (and offline) in one transaction, so the model leaves
    lists and chat at once and the job keeps naming it; only once that has committed is its adapter unloaded
    from vLLM and its weights directory (with the checkpoints in it) removed, since neither can be rolled back.
    The job's checkpoint rows go in the same transaction: their files go with the weights. A model already
    deleted (a second, possibly concurrent, delete) is a 404."""
    spec = _adapter_spec(model)
    with transaction.atomic():
        locked = FineTunedModel.objects.select_for_update().filter(pk=model.pk, deleted_at__isnull=True).first()
        if locked is None:
            raise NotFound(
                f"The model {model.name!r} does not exist or you do not have access to it.",
                code="model_not_found",
                param="model",
            )
        locked.online, locked.deleted_at = False, timezone.now()
        locked.save(update_fields=["online", "deleted_at"])
        FineTuneCheckpoint.objects.filter(job_id=locked.job_id).delete()
        finetune_event_create(job=locked.job, message=f"Fine-tuned model {locked.name} deleted.")
        transaction.on_commit(lambda: _discard_weights(locked, spec))
    return locked


def _discard_weights(model: FineTunedModel, spec: ModelSpec | None) -> None:
    # Files first: a request already under way that finds the adapter gone from vLLM reloads it, which must fail.
    path = Path(model.adapter_path or model.weights_path)
    if storage.is_stored_ref(str(model.adapter_path or model.weights_path)):
        prefix = f"finetunes/{model.job_id}"
        try:
            for part in ("output", "checkpoints"):
                storage.delete_prefix(prefix=f"{prefix}/{part}")
        except OSError:
            logger.warning("Could not remove the stored weights of the deleted model %s", model.name, exc_info=True)
        shutil.rmtree(storage.cache_dir() / prefix, ignore_errors=True)
        path = Path(settings.FINETUNE_DIR) / model.job_id / "output"  # and this host's copy, if it trained it
    root = Path(settings.FINETUNE_DIR).resolve()
    # Only what training wrote under FINETUNE_DIR: a path an operator pointed elsewhere is not ours to remove.
    if path.parts and path.resolve().is_relative_to(root) and path.resolve() != root:
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning(
                "Could not remove the weights of the deleted model %s at %s", model.name, path, exc_info=True
            )
    if spec is not None:
        upstream_adapter_unload(spec=spec)


def fine_tuned_model_delete_owned(user: AbstractUser, name: str) -> bool:
    """Model deleter for ``DELETE /v1/models/{id}``: deletes the caller's own fine-tuned model ``name``;
    False when they have none of that name (others' models do not exist for them)."""
    model = fine_tuned_model_list(owner=user).filter(name=name).first()
    if model is None:
        return False
    fine_tuned_model_delete(model=model)
    return True
