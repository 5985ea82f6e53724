"""The dense side of plugin indexes, built in the background after the sparse side.

Ingestion stores chunks with BM25 only, so a plugin answers searches as soon as its text is in; this build then
embeds the chunks that lack a vector, in slices: each slice embeds for at most ``PLUGINS_DENSE_SLICE_S``
seconds outside the write lock, then merges its vectors under the lock and commits. A crash loses at most the
slice under way (the next run starts from what was committed), a long build never holds the ingest queue or
the plugin's write lock for long, and progress (``dense_done``/``dense_total``) is visible throughout. The
plugin's embedding model is resolved on every slice, so changing it re-embeds everything in the same way.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from apps.chat.models import ModelEndpoint
from apps.chat.selectors import model_endpoint_list
from apps.core.dispatch import enqueue
from apps.plugins import indexes
from apps.plugins.models import Plugin
from workers.errors import InvalidRequest, NotFound
from workers.retrieval.embeddings import load_embedder

logger = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


def embedding_model_get(*, name: str) -> ModelEndpoint:
    endpoint = model_endpoint_list(kind=ModelEndpoint.Kind.EMBEDDING).filter(name=name).first()
    if endpoint is None:
        raise NotFound(f"The embedding model {name!r} does not exist.", code="model_not_found", param="embedding_model")
    return endpoint


def default_embedding_model_name() -> str:
    """The platform's default embedding endpoint, or "" (the bundled multilingual-e5-small) when none is set."""
    endpoint = model_endpoint_list(kind=ModelEndpoint.Kind.EMBEDDING).filter(is_default=True).first()
    return endpoint.name if endpoint else ""


def plugin_embedding_model_set(*, plugin: Plugin, name: str) -> Plugin:
    """Switch the plugin's embedding model; its chunks are re-embedded in the background (BM25 meanwhile)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("embedding_model must name an embedding model.", param="embedding_model")
    endpoint = embedding_model_get(name=name.strip())
    if endpoint.name != plugin.embedding_model:
        Plugin.objects.filter(pk=plugin.pk).update(embedding_model=endpoint.name)
        plugin.embedding_model = endpoint.name
        dense_build_enqueue(plugin=plugin)
    return plugin


def dense_build_mark_queued(*, plugin: Plugin) -> None:
    Plugin.objects.filter(pk=plugin.pk).exclude(dense_status=Plugin.DenseStatus.BUILDING).update(
        dense_status=Plugin.DenseStatus.QUEUED
    )


def dense_build_enqueue(*, plugin: Plugin) -> None:
    dense_build_mark_queued(plugin=plugin)
    enqueue(_dense_task(), plugin.pk)


def dense_build(*, plugin_id: str, slice_s: float | None = None, progress: Progress | None = None) -> bool:
    """Embed the plugin's chunks that have no vector, for at most ``slice_s`` seconds (None: until done).
    Returns True when the dense side is complete. Only one build per plugin runs; another one returns at once."""
    lock_path = _lock_path(plugin_id)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        try:
            return _build(plugin_id=plugin_id, slice_s=slice_s, progress=progress)
        except Exception as exc:
            logger.exception("dense build of plugin %s failed", plugin_id)
            Plugin.objects.filter(pk=plugin_id).update(
                dense_status=Plugin.DenseStatus.FAILED, dense_error=str(exc)[:2000]
            )
            raise
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(*, plugin_id: str, slice_s: float | None, progress: Progress | None) -> bool:
    started = time.monotonic()
    batch_size = settings.PLUGINS_EMBED_BATCH
    while True:
        plugin = Plugin.objects.filter(pk=plugin_id).first()
        if plugin is None:
            return True
        with indexes.write_lock(plugin_id=plugin_id):
            index = indexes.open_index(plugin=plugin)
            wanted = indexes.embedding_path(plugin=plugin)
            if index.embedder.model_path != wanted:
                index.reset_dense(embedder=load_embedder(wanted))
                indexes.commit(plugin=plugin, index=index)
            todo = index.pending_dense()
            embedder = index.embedder
            total = len(index)
        done_before = total - len(todo)
        if not todo:
            Plugin.objects.filter(pk=plugin_id).update(
                dense_status=Plugin.DenseStatus.READY, dense_done=total, dense_total=total, dense_error=""
            )
            return True
        Plugin.objects.filter(pk=plugin_id).update(
            dense_status=Plugin.DenseStatus.BUILDING, dense_done=done_before, dense_total=total, dense_error=""
        )
        ids: list[int] = []
        vectors: list[Any] = []
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            vectors.append(embedder.embed_passages(texts=[text for _, text in batch]))
            ids += [chunk_id for chunk_id, _ in batch]
            Plugin.objects.filter(pk=plugin_id).update(dense_done=done_before + len(ids))
            if progress:
                progress(done_before + len(ids), total)
            if slice_s is not None and time.monotonic() - started >= slice_s:
                break
        _merge(plugin_id=plugin_id, model_path=embedder.model_path, ids=ids, vectors=vectors)
        if slice_s is not None and time.monotonic() - started >= slice_s:
            remaining = Plugin.objects.filter(pk=plugin_id).first()
            if remaining is not None:
                enqueue(_dense_task(), plugin_id)  # the next slice, after whatever else is queued
            return False


def _merge(*, plugin_id: str, model_path: str, ids: list[int], vectors: list[Any]) -> None:
    with indexes.write_lock(plugin_id=plugin_id):
        plugin = Plugin.objects.filter(pk=plugin_id).first()
        if plugin is None:
            return
        index = indexes.open_index(plugin=plugin)
        if index.embedder.model_path != model_path:  # the model changed meanwhile: these vectors are stale
            return
        index.add_vectors(ids=ids, vectors=np.concatenate(vectors))
        indexes.commit(plugin=plugin, index=index)


def _lock_path(plugin_id: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "indexes" / f"{plugin_id}.dense.lock"


def dense_builds_resume() -> int:
    """Queue again the builds that a stopped worker left half-done (a periodic check): those marked building
    that no process is running. Queued ones are still in the broker (tasks are acknowledged late)."""
    stale = [
        plugin_id
        for plugin_id in Plugin.objects.filter(dense_status=Plugin.DenseStatus.BUILDING).values_list("pk", flat=True)
        if not indexes.file_lock_held(_lock_path(plugin_id))
    ]
    for plugin_id in stale:
        enqueue(_dense_task(), plugin_id)
    return len(stale)


def _dense_task() -> Any:
    from apps.plugins.tasks import dense_build_task

    return dense_build_task
