"""Reads: plugins a caller may see, their documents and runs, and search (``plugin_search``)."""

from __future__ import annotations

from typing import Any, TypedDict, Unpack

from django.contrib.auth.models import AbstractUser
from django.db.models import Q, QuerySet

from apps.core.tenancy import get_owned_or_404
from apps.plugins import indexes
from apps.plugins.filters import Condition, Filter, Group, documents_filter, filters_parse
from apps.plugins.models import Document, IngestRun, Plugin
from apps.rerank.selectors import RerankOption, rerank_option_parse
from apps.rerank.services import rerank_scores
from workers.errors import InvalidRequest, NotFound
from workers.retrieval.profiles import get_profile

MAX_TOP_K = 100
DEFAULT_TOP_K = 5


def plugin_list_owned(*, owner: AbstractUser) -> QuerySet[Plugin]:
    return Plugin.objects.filter(owner=owner)


def plugin_list_usable(*, user: AbstractUser) -> QuerySet[Plugin]:
    """Built-ins and the caller's own plugins."""
    return Plugin.objects.filter(Q(owner__isnull=True, builtin=True) | Q(owner=user))


def plugin_get_owned(*, owner: AbstractUser, plugin_id: str) -> Plugin:
    """One of the caller's custom plugins by id (or slug); built-ins and other users' plugins answer 404."""
    lookup = {"slug": plugin_id} if not plugin_id.startswith("plg-") else {"pk": plugin_id}
    return get_owned_or_404(Plugin.objects.all(), owner=owner, label="plugin", **lookup)


def plugin_get_usable(*, user: AbstractUser, plugin: str, param: str = "plugin") -> Plugin:
    """A plugin to search: the caller's own (id or slug) first, then a built-in (slug or id)."""
    if not isinstance(plugin, str) or not plugin.strip():
        raise InvalidRequest("plugin must name a plugin (a built-in slug or your plugin's id).", param=param)
    ref = plugin.strip()
    try:
        return plugin_get_owned(owner=user, plugin_id=ref)
    except NotFound:
        pass
    found = Plugin.objects.filter(Q(slug=ref) | Q(pk=ref), owner__isnull=True, builtin=True).first()
    if found is None:
        raise NotFound(f"No plugin {ref!r}.", code="plugin_not_found", param=param)
    return found


def document_list(*, plugin: Plugin) -> QuerySet[Document]:
    return plugin.documents.all()


def document_get(*, plugin: Plugin, document_id: str) -> Document:
    """A document of a plugin the caller already owns (the plugin was fetched with ``plugin_get_owned``)."""
    document = plugin.documents.filter(pk=document_id).first()
    if document is None:
        raise NotFound("No file with that id in this plugin.", code="not_found")
    return document


def ingest_run_latest(*, plugin: Plugin) -> IngestRun | None:
    return plugin.runs.order_by("-created_at").first()


def search_params(
    *, plugin: Plugin, query: Any, top_k: Any, tfidf_weight: Any, embedding_weight: Any
) -> tuple[str, int, float, float]:
    """Validated (query, top_k, tfidf_weight, embedding_weight); unset weights come from the plugin's defaults,
    then from its retrieval profile."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidRequest("query must be a non-empty string.", param="query")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise InvalidRequest(f"top_k must be an integer from 1 to {MAX_TOP_K}.", param="top_k")
    profile = get_profile(kind=plugin.kind)
    weights: list[float] = []
    for name, value, fallback in (
        ("tfidf_weight", tfidf_weight, profile.tfidf_weight),
        ("embedding_weight", embedding_weight, profile.embedding_weight),
    ):
        value = plugin.params.get(name, fallback) if value is None else value
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
            raise InvalidRequest(f"{name} must be a number >= 0.", param=name)
        weights.append(float(value))
    if weights[0] + weights[1] == 0:
        raise InvalidRequest("tfidf_weight and embedding_weight must not both be 0.", param="embedding_weight")
    return query.strip(), top_k, weights[0], weights[1]


def score_threshold_param(*, value: Any, param: str = "score_threshold") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        raise InvalidRequest(f"{param} must be a number >= 0.", param=param)
    return float(value)


def plugin_search_in(
    *,
    plugin: Plugin,
    query: str,
    top_k: int = 5,
    tfidf_weight: float | None = None,
    embedding_weight: float | None = None,
    filters: Filter | Any = None,
    score_threshold: float | None = None,
    rerank: RerankOption | Any = None,
    rerank_query: str | None = None,
) -> list[dict[str, Any]]:
    """``filters`` (raw JSON or an already parsed ``Filter``) restricts the search to the matching documents
    before ranking, so ``top_k`` stays full whenever enough of them match; hits scoring under
    ``score_threshold`` are dropped.

    ``rerank`` (a rerank model's name, ``{"model", "top_n"}``, a parsed ``RerankOption``, or False for none;
    None: the plugin's ``params["rerank"]``) has the first stage retrieve more candidates, which the rerank
    model scores: hits are then ordered by that score, ``score`` is it (``score_threshold`` applies to it) and
    ``scores`` gains ``rerank``."""
    query, top_k, sparse, dense = search_params(
        plugin=plugin, query=query, top_k=top_k, tfidf_weight=tfidf_weight, embedding_weight=embedding_weight
    )
    parsed = filters if isinstance(filters, Condition | Group) else filters_parse(value=filters)
    threshold = score_threshold_param(value=score_threshold)
    option = (
        rerank
        if isinstance(rerank, RerankOption)
        else rerank_option_parse(value=plugin.params.get("rerank") if rerank is None else rerank)
    )
    allowed: set[str] | None = None
    if parsed is not None:
        allowed = set(
            documents_filter(queryset=plugin.documents.all(), filters=parsed).values_list("external_id", flat=True)
        )
    with indexes.searchable(plugin=plugin) as index:
        pool = option.candidates(top_k=top_k) if option else top_k
        hits = (
            index.search(query=query, top_k=pool, tfidf_weight=sparse, embedding_weight=dense, allowed_ids=allowed)
            if index
            else []
        )
    ranked = [(hit, hit.score, {"sparse": hit.scores["sparse"], "dense": hit.scores["dense"]}) for hit in hits]
    if option is not None and hits:
        # A cross-encoder reads the whole question (``rerank_query``), not the key terms a first stage may use.
        reranked = rerank_scores(
            endpoint=option.endpoint, query=rerank_query or query, passages=[hit.text for hit in hits]
        )
        ranked = [
            (hit, new, {**scores, "rerank": new}) for (hit, _, scores), new in zip(ranked, reranked.scores, strict=True)
        ]
        ranked = sorted(ranked, key=lambda item: -item[1])[:top_k]  # stable: ties keep the first-stage order
    if threshold is not None:
        ranked = [item for item in ranked if item[1] >= threshold]
    metas = dict(
        plugin.documents.filter(external_id__in={hit.doc_id for hit, _, _ in ranked}).values_list("external_id", "meta")
    )
    return [
        {
            "doc_id": hit.doc_id,
            "title": hit.title,
            "url": hit.url or "",
            "text": hit.text,
            "score": round(score, 6),
            "scores": {name: round(value, 6) for name, value in scores.items()},
            "meta": metas.get(hit.doc_id) or {},
        }
        for hit, score, scores in ranked
    ]


class SearchOptions(TypedDict, total=False):
    """``plugin_search_in``'s options after the plugin and the query."""

    top_k: int
    tfidf_weight: float | None
    embedding_weight: float | None
    filters: Filter | Any
    score_threshold: float | None
    rerank: Any


def plugin_search(
    *, user: AbstractUser, plugin: str, query: str, **options: Unpack[SearchOptions]
) -> list[dict[str, Any]]:
    """Ranked passages of ``plugin`` (a built-in slug, or the caller's own plugin id or slug) for ``query``:
    dicts with doc_id (the document's external id), title, url, text, score, scores {sparse, dense} and meta
    (the document's metadata), plus a rerank score with ``rerank`` (see ``plugin_search_in``). Bad input raises
    ``DomainError`` (400, with ``param``); another user's plugin raises ``NotFound``."""
    return plugin_search_in(plugin=plugin_get_usable(user=user, plugin=plugin), query=query, **options)
