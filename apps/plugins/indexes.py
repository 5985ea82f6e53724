"""Per-plugin hybrid indexes on disk (``MEDIA_ROOT/indexes/<plugin id>``) and a process-wide cache of loaded ones.

Writers (ingestion, deletion, reindex) take the plugin's write lock (a thread lock plus an ``flock`` on a file
beside the index, so web processes, workers and commands exclude each other), load a private copy, change it,
save it and bump ``Plugin.index_version``. Searchers keep the loaded index in the cache with the version it was
loaded at and reload it when the row's version differs: a change made by any process is seen on the next search.
"""

from __future__ import annotations

import fcntl
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import F

from apps.chat.models import ModelEndpoint
from apps.chat.selectors import model_endpoint_list, resolve_model_path
from apps.plugins.models import Plugin
from workers.retrieval.embeddings import default_model_path, load_embedder
from workers.retrieval.index import HybridIndex
from workers.retrieval.profiles import get_profile

_cache_lock = threading.Lock()
_thread_locks: dict[str, threading.Lock] = {}


@dataclass
class _Loaded:
    version: int
    index: HybridIndex | None  # None: nothing saved yet
    lock: threading.Lock = field(default_factory=threading.Lock)


_cache: dict[str, _Loaded] = {}


def index_dir(*, plugin_id: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "indexes" / plugin_id


def _has_index(directory: Path) -> bool:
    return (directory / "meta.json").exists()


def embedding_path(*, plugin: Plugin) -> str:
    """The model file or directory the plugin's dense side is embedded with: its embedding endpoint's, or the
    bundled multilingual-e5-small when it names none (or one since removed, so that it stays searchable)."""
    endpoint = (model_endpoint_list(kind=ModelEndpoint.Kind.EMBEDDING).filter(name=plugin.embedding_model).first()
                if plugin.embedding_model else None)
    return str(Path(resolve_model_path(endpoint.path) if endpoint else default_model_path()).resolve())


def new_index(*, plugin: Plugin) -> HybridIndex:
    return HybridIndex(directory=index_dir(plugin_id=plugin.id), profile=get_profile(kind=plugin.kind),
                       embedder=load_embedder(embedding_path(plugin=plugin)))


def open_index(*, plugin: Plugin) -> HybridIndex:
    """A private copy of the saved index (an empty one when nothing is saved yet), for a writer."""
    directory = index_dir(plugin_id=plugin.id)
    return HybridIndex.load(directory=directory) if _has_index(directory) else new_index(plugin=plugin)


@contextmanager
def write_lock(*, plugin_id: str) -> Iterator[None]:
    with _cache_lock:
        thread_lock = _thread_locks.setdefault(plugin_id, threading.Lock())
    lock_path = Path(settings.MEDIA_ROOT) / "indexes" / f"{plugin_id}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with thread_lock, lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def commit(*, plugin: Plugin, index: HybridIndex) -> int:
    """Save ``index`` (under the write lock), bump the version and make it the cached copy; returns the version."""
    index.save()
    Plugin.objects.filter(pk=plugin.pk).update(index_version=F("index_version") + 1)
    version = Plugin.objects.filter(pk=plugin.pk).values_list("index_version", flat=True).first() or 0
    with _cache_lock:
        _cache[plugin.pk] = _Loaded(version=version, index=index)
    return version


def remove(*, plugin_id: str) -> None:
    """Forget and delete a plugin's index (under the write lock)."""
    forget(plugin_id=plugin_id)
    directory = index_dir(plugin_id=plugin_id)
    for path in (directory, directory.with_name(directory.name + ".saving"),
                 directory.with_name(directory.name + ".previous")):
        shutil.rmtree(path, ignore_errors=True)
    directory.with_name(f"{plugin_id}.lock").unlink(missing_ok=True)


def forget(*, plugin_id: str | None = None) -> None:
    """Drop cached indexes (one plugin's, or all): the next search loads them from disk again."""
    with _cache_lock:
        if plugin_id is None:
            _cache.clear()
        else:
            _cache.pop(plugin_id, None)


@contextmanager
def searchable(*, plugin: Plugin) -> Iterator[HybridIndex | None]:
    """The plugin's loaded index at (at least) ``plugin.index_version``, held for one search; None when empty."""
    with _cache_lock:
        loaded = _cache.get(plugin.pk)
    if loaded is None or loaded.version != plugin.index_version:
        directory = index_dir(plugin_id=plugin.pk)
        index = HybridIndex.load(directory=directory) if _has_index(directory) else None
        loaded = _Loaded(version=plugin.index_version, index=index)
        with _cache_lock:
            _cache[plugin.pk] = loaded
    with loaded.lock:  # HybridIndex is not thread-safe: one search at a time per loaded copy
        yield loaded.index
