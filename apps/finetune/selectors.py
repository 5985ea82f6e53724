from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser, User
from django.db.models import QuerySet
from django.utils import timezone

from apps.chat.selectors import ServedModel, chat_model_get, model_object
from apps.core.tenancy import get_owned_or_404
from apps.finetune.models import FineTuneCheckpoint, FineTunedModel, FineTuneEvent, FineTuneJob, TrainingFile
from workers.errors import Conflict, NotFound
from workers.runtime.specs import ModelSpec


def training_file_list(*, owner: User) -> QuerySet[TrainingFile]:
    return TrainingFile.objects.filter(owner=owner)


def training_file_get(*, owner: User, file_id: str, param: str | None = None) -> TrainingFile:
    return get_owned_or_404(TrainingFile.objects.all(), owner=owner, label="file", param=param, pk=file_id)


def finetune_job_list(*, owner: User) -> QuerySet[FineTuneJob]:
    return FineTuneJob.objects.filter(owner=owner).select_related("training_file", "fine_tuned_model")


def finetune_job_get(*, owner: User, job_id: str) -> FineTuneJob:
    return get_owned_or_404(finetune_job_list(owner=owner), owner=owner, label="fine-tuning job", pk=job_id)


def fine_tuned_model_of(*, job: FineTuneJob) -> FineTunedModel:
    model = FineTunedModel.objects.select_related("owner").filter(job=job).first()
    if model is None:
        raise Conflict(f"The job is {job.status}; it has no fine-tuned model yet.", code="model_not_ready")
    if model.is_deleted:
        raise NotFound(f"The fine-tuned model {model.name!r} of this job was deleted.", code="model_not_found")
    return model


def fine_tuned_model_list(*, owner: AbstractUser) -> QuerySet[FineTunedModel]:
    """The owner's fine-tuned models, online or not, except deleted ones."""
    return FineTunedModel.objects.select_related("owner").filter(owner_id=owner.pk, deleted_at__isnull=True)


def finetune_event_list(*, job: FineTuneJob) -> QuerySet[FineTuneEvent]:
    return job.events.all()


def finetune_checkpoint_list(*, job: FineTuneJob) -> QuerySet[FineTuneCheckpoint]:
    return job.checkpoints.all()


def stale_running_jobs() -> QuerySet[FineTuneJob]:
    """Running jobs whose worker stopped sending heartbeats: it died (the job can never finish on its own)."""
    cutoff = timezone.now() - timedelta(seconds=settings.FINETUNE_STALE_AFTER_S)
    return FineTuneJob.objects.filter(status=FineTuneJob.Status.RUNNING, heartbeat_at__lt=cutoff)


def fine_tuned_model_spec(*, model: FineTunedModel) -> ModelSpec:
    """The runtime spec of a fine-tuned model, online or not: its adapter on its base's spec, or its own full
    weights (which no server of the base serves, so they run locally). Raises if the base is gone."""
    spec = replace(
        chat_model_get(user=model.owner, model=model.base_model).spec, name=model.name, adapter_path=model.adapter_path
    )
    if model.weights_path:
        spec = replace(spec, path=model.weights_path, adapter_path="", quantization="none", serve_url="")
    return spec


def fine_tuned_model_served(*, model: FineTunedModel) -> ServedModel:
    if not model.online:
        raise Conflict(
            f"The fine-tuned model {model.name!r} is offline; bring it online first.",
            code="model_offline",
            param="model",
        )
    return ServedModel(
        id=model.name,
        spec=fine_tuned_model_spec(model=model),
        owned_by=_owned_by(model),
        created=int(model.created_at.timestamp()),
    )


def fine_tuned_served_model(user: AbstractUser, name: str) -> ServedModel | None:
    """Chat model resolver: the caller's own fine-tuned models (others' do not exist for them)."""
    model = fine_tuned_model_list(owner=user).filter(name=name).first()
    return fine_tuned_model_served(model=model) if model is not None else None


def fine_tuned_models_for_listing(user: AbstractUser) -> list[dict[str, object]]:
    models = fine_tuned_model_list(owner=user).filter(online=True)
    return [model_object(id=m.name, created=int(m.created_at.timestamp()), owned_by=_owned_by(m)) for m in models]


def _owned_by(model: FineTunedModel) -> str:
    return f"user:{model.owner.get_username()}"
