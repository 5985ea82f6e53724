"""Per-plugin hybrid indexes on disk (``MEDIA_ROOT/indexes/<plugin id>``) and a process-wide cache of loaded ones.

Writers (ingestion, deletion, reindex) take the plugin's write lock (a thread lock plus an ``flock`` on a file
beside the index, so web processes, workers and commands exclude each other), load a private copy, change it,
save it and bump ``Plugin.index_version``. Searchers keep the loaded index in the cache with the version it was
loaded at and reload it when the row's version differs: a change made by any process is seen on the next search.

With a shared object store (``apps.core.storage`` remote) hosts share no disk: a commit also publishes the saved
index as ``indexes/<plugin id>/v<version>/`` before the row's version moves to it, and the write lock also takes a
PostgreSQL advisory lock, so writers on different hosts exclude each other too. A writer whose local copy is older
than the row's version first pulls the published one; a searcher on another host pulls the version the row names
into ``STORAGE_CACHE_DIR`` once, and the version check stays the row it already read (no request per search).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import F

from apps.chat.models import ModelEndpoint
from apps.chat.selectors import model_endpoint_list, resolve_model_path
from apps.core import storage
from apps.plugins.models import Plugin
from workers.retrieval.embeddings import default_model_path, load_embedder
from workers.retrieval.index import HybridIndex
from workers.retrieval.profiles import get_profile

logger = logging.getLogger(__name__)

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
    endpoint = (
        model_endpoint_list(kind=ModelEndpoint.Kind.EMBEDDING).filter(name=plugin.embedding_model).first()
        if plugin.embedding_model
        else None
    )
    return str(Path(resolve_model_path(endpoint.path) if endpoint else default_model_path()).resolve())


def new_index(*, plugin: Plugin) -> HybridIndex:
    return HybridIndex(
        directory=index_dir(plugin_id=plugin.id),
        profile=get_profile(kind=plugin.kind),
        embedder=load_embedder(embedding_path(plugin=plugin)),
    )


class IndexConflictError(RuntimeError):
    """Another host committed the plugin's index while this one was writing it (no shared lock held)."""


def _published(plugin_id: str, version: int) -> str:
    return f"indexes/{plugin_id}/v{version}"


def _version_file(plugin_id: str) -> Path:
    """Which published version this host's ``index_dir`` holds (remote storage only)."""
    return index_dir(plugin_id=plugin_id).with_name(f"{plugin_id}.version")


def _local_version(plugin_id: str) -> int | None:
    try:
        return int(_version_file(plugin_id).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _row_version(plugin_id: str) -> int:
    return Plugin.objects.filter(pk=plugin_id).values_list("index_version", flat=True).first() or 0


def _pull(plugin_id: str) -> None:
    """Bring this host's copy up to the row's version (under the write lock), from the published copy."""
    current = _row_version(plugin_id)
    if current and _local_version(plugin_id) != current:
        storage.download_dir(prefix=_published(plugin_id, current), local_dir=index_dir(plugin_id=plugin_id))
        _version_file(plugin_id).write_text(str(current))


def open_index(*, plugin: Plugin) -> HybridIndex:
    """A private copy of the saved index (an empty one when nothing is saved yet), for a writer."""
    directory = index_dir(plugin_id=plugin.id)
    if storage.is_remote():
        _pull(plugin.id)
    return HybridIndex.load(directory=directory) if _has_index(directory) else new_index(plugin=plugin)


def write_lock_path(plugin_id: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "indexes" / f"{plugin_id}.lock"


def file_lock_held(path: Path) -> bool:
    """Whether a process on this host holds the ``flock`` on ``path`` (a write lock or a dense build's lock)."""
    if not path.exists():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


@contextmanager
def write_lock(*, plugin_id: str) -> Iterator[None]:
    with _cache_lock:
        thread_lock = _thread_locks.setdefault(plugin_id, threading.Lock())
    lock_path = write_lock_path(plugin_id)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with thread_lock, lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with _across_hosts(plugin_id):
                yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _across_hosts(plugin_id: str) -> Iterator[None]:
    """A PostgreSQL session advisory lock when hosts share no disk (an flock only excludes one host's processes)."""
    if not storage.is_remote() or connection.vendor != "postgresql":
        yield
        return
    key = int.from_bytes(
        hashlib.blake2b(f"plugin-index:{plugin_id}".encode(), digest_size=8).digest(), "big", signed=True
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except Exception:  # the connection is gone, and its session locks with it
            logger.debug("advisory unlock skipped: the connection is gone", exc_info=True)


def commit(*, plugin: Plugin, index: HybridIndex) -> int:
    """Save ``index`` (under the write lock), bump the version and make it the cached copy; returns the version."""
    index.save()
    if storage.is_remote():
        version = _publish(plugin_id=plugin.pk, directory=index.directory)
    else:
        Plugin.objects.filter(pk=plugin.pk).update(index_version=F("index_version") + 1)
        version = Plugin.objects.filter(pk=plugin.pk).values_list("index_version", flat=True).first() or 0
    with _cache_lock:
        _cache[plugin.pk] = _Loaded(version=version, index=index)
    return version


def _publish(*, plugin_id: str, directory: Path) -> int:
    """Upload the saved index as the next version, then move the row to it; returns that version."""
    current = _row_version(plugin_id)
    version = current + 1
    storage.upload_dir(local_dir=directory, prefix=_published(plugin_id, version))
    if not Plugin.objects.filter(pk=plugin_id, index_version=current).update(index_version=version):
        storage.delete_prefix(prefix=_published(plugin_id, version))
        raise IndexConflictError(f"the index of plugin {plugin_id} changed on another host meanwhile")
    _version_file(plugin_id).write_text(str(version))
    if current > 1:  # the version before stays, for searchers that read the row just before this commit
        storage.delete_prefix(prefix=_published(plugin_id, current - 1))
    return version


def remove(*, plugin_id: str) -> None:
    """Forget and delete a plugin's index (under the write lock)."""
    forget(plugin_id=plugin_id)
    if storage.is_remote():
        storage.delete_prefix(prefix=f"indexes/{plugin_id}")
        shutil.rmtree(storage.cache_dir() / "indexes" / plugin_id, ignore_errors=True)
        _version_file(plugin_id).unlink(missing_ok=True)
    directory = index_dir(plugin_id=plugin_id)
    for path in (
        directory,
        directory.with_name(directory.name + ".saving"),
        directory.with_name(directory.name + ".previous"),
    ):
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
        version = plugin.index_version
        try:
            directory = _readable_dir(plugin_id=plugin.pk, version=version)
        except storage.StoredFileMissing:  # two commits since the row was read: that version is gone
            version = _row_version(plugin.pk)
            directory = _readable_dir(plugin_id=plugin.pk, version=version)
        index = HybridIndex.load(directory=directory) if directory and _has_index(directory) else None
        loaded = _Loaded(version=version, index=index)
        with _cache_lock:
            _cache[plugin.pk] = loaded
    with loaded.lock:  # HybridIndex is not thread-safe: one search at a time per loaded copy
        yield loaded.index


def _readable_dir(*, plugin_id: str, version: int) -> Path | None:
    """Where a searcher loads ``version`` from: the index directory on a local storage (or when this host wrote that
    very version), else the published copy pulled into the cache, older cached versions being dropped."""
    directory = index_dir(plugin_id=plugin_id)
    if not storage.is_remote() or _local_version(plugin_id) == version:
        return directory
    if not version:
        return None
    cached = storage.fetched_dir(ref=storage.stored_ref(prefix=_published(plugin_id, version)))
    for old in cached.parent.glob("v*"):  # a loaded index lives in memory: older copies are not read again
        if old.name[1:].isdigit() and int(old.name[1:]) < version:
            shutil.rmtree(old, ignore_errors=True)
    return cached
