"""Where chat models come from beyond the registered endpoints, and what augments a chat, as settings declare.

``CHAT_MODEL_SOURCES`` (settings) names, in the order they are asked, the objects that resolve, list and delete
models of other apps (fine-tuned ``ft:`` models); ``CHAT_SEARCH_AUGMENTER`` names the function behind
``internet: true``. They are import paths, like Django's ``AUTHENTICATION_BACKENDS``, because those apps build on
chat and not the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from apps.chat.augment import Augmented
    from apps.chat.selectors import ServedModel


class ModelSource(Protocol):
    def resolve(self, *, user: AbstractUser, model: str) -> ServedModel | None:
        """The caller's model of that id, or None when this source has none."""

    def list_for(self, *, user: AbstractUser) -> list[dict[str, object]]:
        """The caller's models, as OpenAI model objects."""

    def delete_owned(self, *, user: AbstractUser, model_id: str) -> bool:
        """Deletes the caller's own model of that id; False when they own none."""


# Called with keywords: user, messages, options (the request's extension fields) and spec (its chat model).
SearchAugmenter = Callable[..., "Augmented"]


def model_sources() -> list[ModelSource]:
    return [import_string(path) for path in settings.CHAT_MODEL_SOURCES]


def search_augmenter() -> SearchAugmenter | None:
    return import_string(settings.CHAT_SEARCH_AUGMENTER) if settings.CHAT_SEARCH_AUGMENTER else None
