"""A size bound on this host's copies of stored files (``STORAGE_CACHE_DIR``): least recently used go first.

An entry is a cached file with its ``.etag`` sidecar, or a directory fetched as a unit (it holds the ``.complete``
marker), never a part of one. Its last use is the mtime of the file, or of the directory's marker, which every cache
hit renews (``touch``). Every process of the host shares the cache, so pruning skips what another one is writing
(names starting with a dot: ``.partial`` downloads, a copy being replaced), spares what was used in the last
``RECENT_S`` seconds (a reader between a fetch or hit and its ``open``) and takes a missing file for one that another
process removed first. What a process killed mid-fetch leaves behind (a ``.partial`` download, a copy it was replacing
or removing) is garbage once nothing in it has been written for ``LEFTOVER_S``, and goes, bound or no bound.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# Long enough for a model loader to open every file of a directory it has just been handed.
RECENT_S = 300.0
COMPLETE = ".complete"  # written last into a downloaded directory: its absence means a partial copy
SIDECAR = ".etag"
_LOCK = ".prune.lock"
# A download in progress writes far more often than this; a stalled one this long is dead (its fetch then fails).
LEFTOVER_S = 3600.0
# The names storage.local_path, storage.download_dir and _remove give their temporary files and directories.
_TEMPORARY = re.compile(r"^\..+\.(partial|old-\d+|prune-[0-9a-f]{8})$")


@dataclass(frozen=True)
class _Entry:
    path: Path
    stamp: Path  # whose mtime is the entry's last use
    size: int
    used: float


def touch(path: Path) -> bool:
    """Mark a cached file (or a directory's marker) as used now; False when it is not there (any more)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:
        logger.debug("could not renew %s", path, exc_info=True)  # still there: only its recency is stale
    return True


def prune(*, root: Path, max_bytes: int, keep: Path) -> None:
    """Remove the leftovers of killed fetches under ``root``, then the least recently used entries until they take
    ``max_bytes`` at most (0: no bound), never ``keep`` (what was just fetched, however large) nor a recently used
    one. A failure is logged, not raised: the fetch that called it has succeeded."""
    try:
        _prune(root=root, max_bytes=max_bytes, keep=keep)
    except Exception:
        logger.warning("could not prune the storage cache %s", root, exc_info=True)


def _prune(*, root: Path, max_bytes: int, keep: Path) -> None:
    with _exclusive(root / _LOCK) as held:
        if not held:
            return  # another process of this host is pruning it now; the next fetch prunes again
        leftovers: list[Path] = []
        # Unbounded, only leftovers are looked for: sizing every cached model directory would cost a walk a fetch.
        entries = list(_entries(root, leftovers=leftovers, sized=max_bytes > 0))
        for leftover in leftovers:
            _remove_leftover(leftover)
        if max_bytes <= 0:
            return
        total = sum(entry.size for entry in entries)
        for entry in sorted(entries, key=lambda entry: entry.used):
            if total <= max_bytes:
                return
            if entry.path != keep and _remove(entry):
                total -= entry.size


@contextmanager
def _exclusive(path: Path) -> Iterator[bool]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _entries(directory: Path, *, leftovers: list[Path], sized: bool) -> Iterator[_Entry]:
    """The entries under ``directory`` (their sizes 0 unless ``sized``); stale leftovers of killed fetches are added
    to ``leftovers`` on the way."""
    try:
        with os.scandir(directory) as scan:
            children = list(scan)
    except FileNotFoundError:
        return
    for child in children:
        path = Path(child.path)
        if child.name.startswith("."):
            # A download in progress (.partial), a copy being replaced or removed, the lock: not entries.
            if _TEMPORARY.match(child.name) and _last_written(path) < time.time() - LEFTOVER_S:
                leftovers.append(path)
            continue
        try:
            if child.is_dir(follow_symlinks=False):
                marker = path / COMPLETE
                if marker.exists():
                    size = _tree_size(path) if sized else 0
                    yield _Entry(path=path, stamp=marker, size=size, used=marker.stat().st_mtime)
                else:  # a prefix holding entries (empty ones are left: a fetch may need it)
                    yield from _entries(path, leftovers=leftovers, sized=sized)
            elif child.is_file(follow_symlinks=False) and not child.name.endswith(SIDECAR):
                stat = child.stat(follow_symlinks=False)
                size = stat.st_size + _size(path.with_name(path.name + SIDECAR)) if sized else 0
                yield _Entry(path=path, stamp=path, size=size, used=stat.st_mtime)
        except FileNotFoundError:
            continue  # removed by another process since the scan


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except FileNotFoundError:
        return 0


def _tree_size(directory: Path) -> int:
    return sum(_size(Path(parent) / name) for parent, _, names in os.walk(directory) for name in names)


def _last_written(path: Path) -> float:
    """The newest mtime in ``path`` (a file, or a directory and everything in it); now if any of it vanished
    meanwhile (another process is at work in it)."""
    inside = (Path(parent) / name for parent, dirs, names in os.walk(path) for name in (*dirs, *names))
    try:
        return max(item.lstat().st_mtime for item in (path, *inside))
    except FileNotFoundError:
        return time.time()


def _remove_leftover(path: Path) -> None:
    logger.info("removing %s, left in the storage cache by a fetch that did not finish", path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _remove(entry: _Entry) -> bool:
    """Remove ``entry`` unless it was used since the scan or lately; whether it went."""
    try:
        used = entry.stamp.stat().st_mtime  # again: another process may have hit it since the scan
    except FileNotFoundError:
        return True  # another process removed it first
    if used > entry.used or time.time() - used < RECENT_S:
        return False
    # A reader that already opened one of its files keeps reading it: on POSIX an unlinked file lives on until
    # its last descriptor closes. What this cannot cover is a reader handed the path long ago that opens it only
    # now (older than RECENT_S): it finds no file, and fetching again brings it back.
    if entry.stamp == entry.path:
        # The file before its sidecar: a fetch that rewrites both meanwhile then loses at most the sidecar (the
        # next use downloads it again), never the file it has just returned.
        entry.path.unlink(missing_ok=True)
        entry.path.with_name(entry.path.name + SIDECAR).unlink(missing_ok=True)
        return True
    # Out of sight in one rename, so that no reader ever sees part of the directory (a fetch downloads it anew).
    doomed = entry.path.with_name(f".{entry.path.name}.prune-{uuid.uuid4().hex[:8]}")
    try:
        entry.path.rename(doomed)
    except FileNotFoundError:
        return True
    shutil.rmtree(doomed, ignore_errors=True)
    return True
