"""Plugins: the built-ins' names, and creating and deleting a caller's plugins, with their default search
parameters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from apps.plugins import dense, indexes
from apps.plugins.models import Document, Plugin
from apps.plugins.selectors import DEFAULT_TOP_K
from workers.errors import Conflict, InvalidRequest
from workers.retrieval.profiles import default_weights

# In loading order: wiki first (the default local search provider, a few minutes), law last (embedding its
# 66k chunks takes the longest).
BUILTINS: dict[str, tuple[str, str]] = {
    "wiki": ("Wiki", "Encyclopedia passages in Chinese and English."),
    "finance": ("Finance", "Annual-report excerpts: narrative paragraphs and financial tables."),
    "law": ("Law", "PRC laws, regulations and judicial interpretations, one article per passage."),
}


def default_params(*, kind: str) -> dict[str, Any]:
    tfidf, embedding = default_weights(kind=kind)
    return {
        "top_k": DEFAULT_TOP_K,
        "tfidf_weight": tfidf,
        "embedding_weight": embedding,
        "prompt_prefix": "",
        "show_search_result": False,
    }


def plugin_create(*, owner: User, name: str, description: str = "", kind: str = Plugin.Kind.GENERIC) -> Plugin:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidRequest("name must be 1 to 100 characters.", param="name")
    if kind not in Plugin.Kind.values:
        raise InvalidRequest(f"kind must be one of {', '.join(Plugin.Kind.values)}.", param="kind")
    plugin = Plugin(
        owner=owner,
        name=name,
        description=description or "",
        kind=kind,
        params=default_params(kind=kind),
        embedding_model=dense.default_embedding_model_name(),
    )
    plugin.slug = slugify(name, allow_unicode=True)[:100] or plugin.id
    if plugin.slug in BUILTINS:
        # The caller's own plugins come first where a slug names a plugin: this one would hide the built-in.
        raise InvalidRequest(
            f"{name!r} is the name of a built-in plugin ({', '.join(BUILTINS)}); choose another.",
            code="plugin_name_reserved",
            param="name",
        )
    if Plugin.objects.filter(owner=owner, slug=plugin.slug).exists():
        raise Conflict(f"You already have a plugin named {name!r}.", code="plugin_exists", param="name")
    try:
        with transaction.atomic():
            plugin.save()
    except IntegrityError:
        raise Conflict(f"You already have a plugin named {name!r}.", code="plugin_exists", param="name") from None
    return plugin


def document_files_delete(documents: Iterable[Document]) -> None:
    """Delete the stored files of ``documents`` (their rows are the caller's to delete)."""
    for document in documents:
        if document.file:
            document.file.delete(save=False)


def plugin_delete(*, plugin: Plugin) -> None:
    """Delete a plugin, its documents and its index directory."""
    plugin_id = plugin.pk
    with indexes.write_lock(plugin_id=plugin_id):
        document_files_delete(plugin.documents.exclude(file=""))
        plugin.delete()
        indexes.remove(plugin_id=plugin_id)
