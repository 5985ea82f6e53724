"""Files that every host must see (uploads, fine-tuned weights, plugin indexes), through Django's default storage.

With the default ``FileSystemStorage`` (one machine, or a filesystem shared by all of them) a stored file is read
where it lies and nothing is copied. With an object store (``STORAGE_BACKEND=s3``: S3, MinIO, ...) a process that
needs a local path (a PDF extractor, a model loader, faiss) gets a copy in ``STORAGE_CACHE_DIR``, downloaded
atomically and reused while the stored object keeps its size and ETag. Directories (a LoRA adapter, a checkpoint, a
saved index) travel file by file under a key prefix. After each fetch into the cache, the least recently used copies
go until it is within ``STORAGE_CACHE_MAX_BYTES`` (``storage_cache``).

A path that names a stored directory rather than a local one is written ``storage:<prefix>`` (see ``stored_ref``),
so a row can say where a fine-tuned adapter lies without naming the disk of the host that trained it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Protocol, cast

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import transaction

from apps.core import storage_cache
from apps.core.storage_cache import COMPLETE as _COMPLETE

logger = logging.getLogger(__name__)
STORED_REF = "storage:"
_fetching = threading.Lock()


class StoredFileMissing(FileNotFoundError):
    """A name that the storage does not hold."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} is not in the file storage ({type(_storage()).__name__})")
        self.name = name


class _S3Storage(Protocol):
    """The parts of django-storages' S3 backend that ``_remote_stat`` uses."""

    bucket_name: str

    def _normalize_name(self, name: str) -> str: ...


def _storage() -> Storage:
    return storages["default"]


def is_remote() -> bool:
    """Whether stored files live elsewhere than this host's MEDIA_ROOT (and must be copied to be read)."""
    return not isinstance(_storage(), FileSystemStorage)


def cache_dir() -> Path:
    return Path(settings.STORAGE_CACHE_DIR)


def _cached(name: str) -> Path:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"not a storage name: {name!r}")
    return cache_dir() / relative


def _prune_cache(*, keep: Path) -> None:
    storage_cache.prune(root=cache_dir(), max_bytes=settings.STORAGE_CACHE_MAX_BYTES, keep=keep)


def _is_current(*, target: Path, tag: Path, size: int, etag: str) -> bool:
    """Whether the cached copy is the stored object's (size and ETag), marking it used when it is."""
    try:
        current = target.stat().st_size == size and tag.read_text() == etag
    except FileNotFoundError:
        return False  # never fetched, or evicted (perhaps by another process) since
    return current and storage_cache.touch(target)


def _remote_stat(name: str) -> tuple[int, str]:
    """Size and ETag (``""`` when the backend has none) of a stored object; one request on S3."""
    storage = _storage()
    head = getattr(getattr(storage, "connection", None), "meta", None)
    if head is not None and hasattr(storage, "bucket_name"):
        from botocore.exceptions import ClientError

        s3 = cast(_S3Storage, storage)
        try:
            # django-storages' own key for the name (AWS_LOCATION prefix included).
            found = head.client.head_object(Bucket=s3.bucket_name, Key=s3._normalize_name(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise StoredFileMissing(name) from None
            raise
        return int(found["ContentLength"]), str(found.get("ETag", ""))
    if not _storage().exists(name):
        raise StoredFileMissing(name)
    return _storage().size(name), ""


def local_path(*, name: str) -> Path:
    """A local file with the content of the stored ``name``: the file itself on a local storage, else a cached
    copy, fetched when missing or when the stored object changed (another size or ETag; ``StoredFileMissing``
    when the storage has no such object)."""
    if not is_remote():
        return Path(_storage().path(name))  # as it always was: a missing file is the reader's error
    target = _cached(name)
    size, etag = _remote_stat(name)
    tag = target.with_name(target.name + storage_cache.SIDECAR)
    if _is_current(target=target, tag=tag, size=size, etag=etag):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(descriptor, "wb") as out, _storage().open(name, "rb") as stored:
            shutil.copyfileobj(stored, out, length=1 << 20)
        tag.write_text(etag)
        os.replace(partial, target)  # readers see the old copy or the whole new one, never a part
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    _prune_cache(keep=target)
    return target


def evict(*, name: str) -> None:
    """Drop this host's cached copy of ``name`` (after a one-off job); nothing on a local storage."""
    if is_remote():
        target = _cached(name)
        target.unlink(missing_ok=True)
        target.with_name(target.name + storage_cache.SIDECAR).unlink(missing_ok=True)


def delete_after_commit(*, names: Iterable[str | None]) -> None:
    """Delete the stored ``names`` (and this host's cached copies) once the current transaction commits, so that a
    deletion that rolls back leaves its files in place; an empty name (a file field without one) is skipped. A file
    the storage fails to delete is logged and left behind: the rows that named it are gone, and the request that
    deleted them has succeeded."""
    transaction.on_commit(partial(_delete_stored, [name for name in names if name]))


def _delete_stored(names: list[str]) -> None:
    for name in names:
        try:
            evict(name=name)
            _storage().delete(name)
        except Exception:
            logger.warning("could not delete the stored file %s", name, exc_info=True)


def _walk(prefix: str) -> list[str]:
    """Every stored name under ``prefix`` (recursively), relative to it."""
    try:
        dirs, files = _storage().listdir(prefix)
    except FileNotFoundError:
        return []
    names = list(files)
    for sub in dirs:
        names += [f"{sub}/{name}" for name in _walk(f"{prefix}/{sub}")]
    return names


def upload_dir(*, local_dir: Path, prefix: str, skip: tuple[str, ...] = ()) -> int:
    """Store every file under ``local_dir`` as ``prefix/<relative path>``, replacing what was there, except under
    the top-level entries whose names start with one of ``skip``; returns the number of files."""
    prefix = prefix.strip("/")
    count = 0
    for path in sorted(Path(local_dir).rglob("*")):
        relative = path.relative_to(local_dir)
        if not path.is_file() or relative.parts[0].startswith(skip) or path.name == _COMPLETE:
            continue
        name = f"{prefix}/{relative.as_posix()}"
        if _storage().exists(name):
            _storage().delete(name)  # uploads must not be renamed: a directory is read back by its names
        with path.open("rb") as handle:
            saved = _storage().save(name, File(handle))
        if saved != name:
            raise RuntimeError(f"the storage renamed {name!r} to {saved!r}")
        count += 1
    return count


def download_dir(*, prefix: str, local_dir: Path) -> Path:
    """Copy every stored file under ``prefix`` into ``local_dir``, replacing it in one rename once complete.
    Raises ``StoredFileMissing`` when nothing is stored there."""
    prefix = prefix.strip("/")
    names = _walk(prefix)
    if not names:
        raise StoredFileMissing(prefix + "/")
    local_dir = Path(local_dir)
    local_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=local_dir.parent, prefix=f".{local_dir.name}.", suffix=".partial"))
    try:
        for relative in names:
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out, _storage().open(f"{prefix}/{relative}", "rb") as stored:
                shutil.copyfileobj(stored, out, length=1 << 20)
        (staging / _COMPLETE).touch()
        old = local_dir.with_name(f".{local_dir.name}.old-{os.getpid()}")
        if local_dir.exists():
            local_dir.rename(old)
        staging.rename(local_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return local_dir


def delete_prefix(*, prefix: str) -> int:
    """Delete every stored file under ``prefix``; returns how many there were."""
    prefix = prefix.strip("/")
    names = _walk(prefix)
    for relative in names:
        _storage().delete(f"{prefix}/{relative}")
    return len(names)


def stored_ref(*, prefix: str) -> str:
    return STORED_REF + prefix.strip("/")


def is_stored_ref(path: str) -> bool:
    return path.startswith(STORED_REF)


def fetched_dir(*, ref: str) -> Path:
    """The local copy of the stored directory that ``ref`` (``storage:<prefix>``) names, downloaded into the cache
    on first use; a stored directory is written once, so a complete copy is reused as it is (and marked used)."""
    prefix = ref.removeprefix(STORED_REF)
    target = _cached(prefix)
    if storage_cache.touch(target / _COMPLETE):
        return target
    with _fetching:
        fetched = not storage_cache.touch(target / _COMPLETE)
        if fetched:
            download_dir(prefix=prefix, local_dir=target)
    if fetched:
        _prune_cache(keep=target)
    return target
