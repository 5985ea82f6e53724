"""STORAGE_CACHE_MAX_BYTES: after a fetch, the least recently used cached copies (a file with its ETag, or a whole
fetched directory) go until the cache is within the bound; S3 is the moto server of conftest."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.core import storage, storage_cache


@pytest.fixture
def lru_only(monkeypatch):
    """No grace for recent use, so that the order of use alone decides (the grace has its own test)."""
    monkeypatch.setattr(storage_cache, "RECENT_S", 0.0)


def _put(name: str, size: int) -> str:
    return default_storage.save(name, ContentFile(b"x" * size))


def _put_dir(prefix: str, tmp_path: Path, size: int) -> str:
    source = tmp_path / "src" / prefix
    (source / "nested").mkdir(parents=True)
    (source / "adapter_config.json").write_bytes(b"{" * size)
    (source / "nested" / "weights.bin").write_bytes(b"\0" * size)
    storage.upload_dir(local_dir=source, prefix=prefix)
    return storage.stored_ref(prefix=prefix)


def _age(path: Path, seconds: float) -> None:
    """As if last used ``seconds`` ago."""
    when = time.time() - seconds
    os.utime(path, (when, when))


def _cache_size(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and path.name != ".prune.lock")


def test_least_recently_used_files_go_first_and_a_hit_keeps_one(s3_storage, settings, lru_only):
    cache = Path(settings.STORAGE_CACHE_DIR)
    settings.STORAGE_CACHE_MAX_BYTES = 2500
    a, b, c = (_put(f"text/{letter}.txt", 1000) for letter in "abc")
    path_a, path_b = storage.local_path(name=a), storage.local_path(name=b)
    _age(path_a, 300)
    _age(path_b, 200)

    settings.STORAGE_CACHE_MAX_BYTES = 1500  # over the bound already: a hit still prunes nothing
    assert storage.local_path(name=a) == path_a
    assert path_a.exists() and path_b.exists()

    settings.STORAGE_CACHE_MAX_BYTES = 2500
    path_c = storage.local_path(name=c)  # a fetch: b, used least recently, goes with its ETag
    assert not path_b.exists() and not path_b.with_name("b.txt.etag").exists()
    assert path_a.read_bytes() == path_c.read_bytes() == b"x" * 1000
    assert sorted(p.name for p in path_a.parent.iterdir()) == ["a.txt", "a.txt.etag", "c.txt", "c.txt.etag"]
    assert _cache_size(cache) <= 2500
    assert storage.local_path(name=b).read_bytes() == b"x" * 1000  # fetched again when needed


def test_a_directory_goes_whole_and_a_hit_keeps_one(s3_storage, settings, tmp_path, lru_only):
    settings.STORAGE_CACHE_MAX_BYTES = 10_000
    one, two = _put_dir("finetunes/j1/output", tmp_path, 600), _put_dir("finetunes/j2/output", tmp_path, 600)
    dir_one, dir_two = storage.fetched_dir(ref=one), storage.fetched_dir(ref=two)
    _age(dir_one / ".complete", 300)
    _age(dir_two / ".complete", 200)
    assert storage.fetched_dir(ref=one) == dir_one  # a hit: now the most recently used

    settings.STORAGE_CACHE_MAX_BYTES = 2500
    path = storage.local_path(name=_put("text/a.txt", 1000))  # 1,200 + 1,200 + 1,000 + its ETag: over
    assert not dir_two.exists()
    assert sorted(p.name for p in dir_two.parent.parent.iterdir()) == ["j1", "j2"]  # no half-removed copy left
    assert list(dir_two.parent.iterdir()) == []
    assert sorted(p.relative_to(dir_one).as_posix() for p in dir_one.rglob("*")) == [
        ".complete",
        "adapter_config.json",
        "nested",
        "nested/weights.bin",
    ]
    assert path.exists()
    assert (storage.fetched_dir(ref=two) / "nested" / "weights.bin").read_bytes() == b"\0" * 600  # fetched again
    assert not dir_one.exists()  # ... and the older directory made room for it


def test_the_entry_just_fetched_stays_even_alone_over_the_bound(s3_storage, settings, tmp_path, lru_only):
    settings.STORAGE_CACHE_MAX_BYTES = 500
    small = storage.local_path(name=_put("text/small.txt", 100))
    _age(small, 60)
    big = storage.local_path(name=_put("text/big.txt", 1000))
    assert big.read_bytes() == b"x" * 1000 and not small.exists()

    _age(big, 60)
    directory = storage.fetched_dir(ref=_put_dir("finetunes/j1/output", tmp_path, 600))
    assert (directory / "nested" / "weights.bin").exists() and not big.exists()


def test_recently_used_entries_and_downloads_in_progress_are_kept(s3_storage, settings):
    cache = Path(settings.STORAGE_CACHE_DIR)
    settings.STORAGE_CACHE_MAX_BYTES = 500
    first = storage.local_path(name=_put("text/a.txt", 1000))
    second = storage.local_path(name=_put("text/b.txt", 1000))
    assert first.exists() and second.exists()  # within RECENT_S: another process may be about to open it

    partial_file = cache / "text" / ".c.txt.x1y2.partial"
    partial_dir = cache / "finetunes" / ".output.x1y2.partial"
    partial_file.write_bytes(b"x" * 1000)
    (partial_dir / "nested").mkdir(parents=True)
    (partial_dir / "nested" / "weights.bin").write_bytes(b"\0" * 1000)
    for path in (first, second, partial_file, partial_dir / "nested" / "weights.bin"):
        _age(path, storage_cache.RECENT_S + 60)
    third = storage.local_path(name=_put("text/d.txt", 100))
    assert not first.exists() and not second.exists() and third.exists()
    assert partial_file.exists() and (partial_dir / "nested" / "weights.bin").exists()  # another's download


def test_an_unbounded_cache_keeps_everything(s3_storage, settings, tmp_path, lru_only):
    settings.STORAGE_CACHE_MAX_BYTES = 0
    paths = [storage.local_path(name=_put(f"text/{letter}.txt", 1000)) for letter in "abc"]
    for path in paths:
        _age(path, 300)
    directory = storage.fetched_dir(ref=_put_dir("finetunes/j1/output", tmp_path, 1000))
    assert all(path.exists() for path in paths) and (directory / "nested" / "weights.bin").exists()


def test_an_unbounded_cache_does_not_walk_what_it_holds(s3_storage, settings, tmp_path, monkeypatch):
    settings.STORAGE_CACHE_MAX_BYTES = 0
    storage.fetched_dir(ref=_put_dir("finetunes/j1/output", tmp_path, 1000))
    walked: list[Path] = []
    monkeypatch.setattr(storage_cache, "_tree_size", lambda path: walked.append(path) or 0)
    storage.fetched_dir(ref=_put_dir("finetunes/j2/output", tmp_path, 1000))  # a fetch prunes
    assert walked == []


def test_a_failed_prune_does_not_fail_the_fetch(s3_storage, settings, caplog, lru_only):
    cache = Path(settings.STORAGE_CACHE_DIR)
    settings.STORAGE_CACHE_MAX_BYTES = 500
    old = storage.local_path(name=_put("text/a.txt", 1000))
    _age(old, 300)
    (cache / ".prune.lock").unlink()
    (cache / ".prune.lock").mkdir()  # the lock cannot be opened
    path = storage.local_path(name=_put("text/b.txt", 1000))
    assert path.read_bytes() == b"x" * 1000 and old.exists()
    assert "could not prune the storage cache" in caplog.text


@pytest.mark.parametrize("bound", [0, 10_000])
def test_what_killed_fetches_left_goes_once_nothing_writes_to_it(s3_storage, settings, bound):
    cache = Path(settings.STORAGE_CACHE_DIR)
    settings.STORAGE_CACHE_MAX_BYTES = bound
    storage.local_path(name=_put("text/a.txt", 100))
    stale_file = cache / "text" / ".b.txt.k9x2.partial"
    stale_dir = cache / "finetunes" / "j1" / ".output.k9x2.partial"
    replaced = cache / "finetunes" / "j2" / ".output.old-4242"
    removed = cache / "finetunes" / "j3" / ".output.prune-0a1b2c3d"
    live_dir = cache / "finetunes" / "j4" / ".output.z7y6.partial"  # one file still being written
    stale_file.write_bytes(b"x" * 100)
    for directory in (stale_dir, replaced, removed, live_dir):
        (directory / "nested").mkdir(parents=True)
        (directory / "nested" / "weights.bin").write_bytes(b"\0" * 100)
    for path in (stale_file, *(d / "nested" / "weights.bin" for d in (stale_dir, replaced, removed))):
        _age(path, storage_cache.LEFTOVER_S + 60)
    for directory in (stale_dir, replaced, removed, live_dir):
        _age(directory / "nested", storage_cache.LEFTOVER_S + 60)
        _age(directory, storage_cache.LEFTOVER_S + 60)
    not_ours = cache / "text" / ".keep-me"
    not_ours.write_bytes(b"?")
    _age(not_ours, storage_cache.LEFTOVER_S + 60)

    fresh = storage.local_path(name=_put("text/c.txt", 100))  # a fetch prunes

    assert fresh.exists() and not stale_file.exists()
    assert not stale_dir.exists() and not replaced.exists() and not removed.exists()
    assert (live_dir / "nested" / "weights.bin").exists() and not_ours.exists()
    assert (cache / ".prune.lock").exists()
