"""Fine-tuned models as a chat model source (``settings.CHAT_MODEL_SOURCES``): each caller sees, calls and deletes
only their own; another tenant's do not exist for them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser

from apps.chat.selectors import ServedModel
from apps.finetune.selectors import fine_tuned_models_for_listing, fine_tuned_served_model
from apps.finetune.services.deployment import fine_tuned_model_delete_owned


class FineTunedModels:
    def resolve(self, *, user: AbstractUser, model: str) -> ServedModel | None:
        return fine_tuned_served_model(user, model)

    def list_for(self, *, user: AbstractUser) -> list[dict[str, object]]:
        return fine_tuned_models_for_listing(user)

    def delete_owned(self, *, user: AbstractUser, model_id: str) -> bool:
        return fine_tuned_model_delete_owned(user, model_id)


fine_tuned_models = FineTunedModels()
