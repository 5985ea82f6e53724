"""Writes on the ``/v1/models`` resource. Only models a caller owns can be deleted; the apps that make such
models (fine-tuning) register a deleter here, as they register resolvers and listers in the selectors."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AbstractUser

from apps.chat.selectors import model_list
from workers.errors import Forbidden, NotFound

# Deletes the caller's own model of that id and answers True; False when they own none of that id.
ModelDeleter = Callable[[AbstractUser, str], bool]
extra_model_deleters: list[ModelDeleter] = []


def model_delete(*, user: AbstractUser, model_id: str) -> dict[str, object]:
    """OpenAI's deleted-model object. A model the caller can use but does not own (a platform model) is a 403,
    as at OpenAI; one they cannot see (unknown, already deleted, another tenant's) is a 404."""
    for deleter in extra_model_deleters:
        if deleter(user, model_id):
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
