"""Writes on the ``/v1/models`` resource. Only models a caller owns can be deleted: those of the model sources
(``apps.chat.registry``) that made them, such as fine-tuning."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser

from apps.chat.registry import model_sources
from apps.chat.selectors import model_list
from workers.errors import Forbidden, NotFound


def model_delete(*, user: AbstractUser, model_id: str) -> dict[str, object]:
    """OpenAI's deleted-model object. A model the caller can use but does not own (a platform model) is a 403,
    as at OpenAI; one they cannot see (unknown, already deleted, another tenant's) is a 404."""
    for source in model_sources():
        if source.delete_owned(user=user, model_id=model_id):
            return {"id": model_id, "object": "model", "deleted": True}
    if any(row["id"] == model_id for row in model_list(user=user)):
        raise Forbidden(
            f"You do not own the model {model_id!r}; only your own fine-tuned models can be deleted.",
            code="model_not_deletable",
            param="model",
        )
    raise NotFound(
        f"The model {model_id!r} does not exist or you do not have access to it.", code="model_not_found", param="model"
    )
