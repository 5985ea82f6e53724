"""Hook for search-augmented chat (``internet: true``): the search app installs a provider here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractUser

from apps.core.errors import ApiError
from workers.runtime.specs import ChatMessage


@dataclass(frozen=True)
class Augmented:
    messages: list[ChatMessage]
    sources: list[dict[str, object]]


SearchAugmenter = Callable[[AbstractUser, Sequence[ChatMessage], dict[str, object]], Augmented]
search_augmenter: list[SearchAugmenter] = []


def augment_with_search(
    *, user: AbstractUser, messages: Sequence[ChatMessage], options: dict[str, object]
) -> Augmented:
    if not search_augmenter:
        raise ApiError("Search-augmented chat is not available on this platform.", code="search_unavailable",
                       param="internet")
    return search_augmenter[0](user, messages, options)
