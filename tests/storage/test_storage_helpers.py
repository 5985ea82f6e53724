"""apps.core.storage: local files read in place; S3 (a moto server, see conftest) copied to a cache atomically."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.core import storage


def test_local_storage_reads_files_in_place(settings, tmp_path):
    settings.STORAGE_CACHE_DIR = tmp_path / "cache"
    name = default_storage.save("text/a.txt", ContentFile(b"hello"))
    assert not storage.is_remote()
    assert storage.local_path(name=name) == Path(settings.MEDIA_ROOT) / name
    storage.evict(name=name)  # nothing to drop: the stored file itself stays
    assert storage.local_path(name=name).read_bytes() == b"hello"
    assert not (tmp_path / "cache").exists()


def test_s3_copy_is_cached_and_refreshed_when_the_object_changes(s3_storage, settings):
    assert storage.is_remote()
    name = default_storage.save("text/a.txt", ContentFile(b"first"))
    assert s3_storage.stored_keys() == ["text/a.txt"]
    path = storage.local_path(name=name)
    assert path == Path(settings.STORAGE_CACHE_DIR) / "text/a.txt" and path.read_bytes() == b"first"
    inode = path.stat().st_ino
    assert storage.local_path(name=name).stat().st_ino == inode  # reused: not downloaded again
    default_storage.delete(name)
    default_storage.save(name, ContentFile(b"again"))  # same size, another ETag
    assert storage.local_path(name=name).read_bytes() == b"again"
    storage.evict(name=name)
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


def test_s3_missing_object_is_a_clear_error(s3_storage):
    with pytest.raises(storage.StoredFileMissing, match=r"'text/none\.txt' is not in the file storage"):
        storage.local_path(name="text/none.txt")
    with pytest.raises(storage.StoredFileMissing, match="nothing/"):
        storage.download_dir(prefix="nothing", local_dir=Path(s3_storage.bucket))


def test_s3_failed_download_leaves_the_old_copy_and_no_partial_file(s3_storage, monkeypatch):
    name = default_storage.save("text/a.txt", ContentFile(b"old"))
    path = storage.local_path(name=name)
    default_storage.delete(name)
    default_storage.save(name, ContentFile(b"new content" * 100_000))

    class Broken:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, size=-1):
            raise ConnectionResetError("connection dropped mid-download")

    backend = storage._storage()
    monkeypatch.setattr(backend, "open", lambda *args, **kwargs: Broken())
    with pytest.raises(ConnectionResetError):
        storage.local_path(name=name)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.txt", "a.txt.etag"]


def test_directories_round_trip(s3_storage, tmp_path):
    source = tmp_path / "out"
    (source / "checkpoint-2").mkdir(parents=True)
    (source / "nested" / "deep").mkdir(parents=True)
    (source / "adapter_config.json").write_text("{}")
    (source / "nested" / "deep" / "weights.bin").write_bytes(b"\0" * 1000)
    (source / "checkpoint-2" / "state.json").write_text("{}")
    assert storage.upload_dir(local_dir=source, prefix="finetunes/j1/output", skip=("checkpoint-",)) == 2
    assert storage.upload_dir(local_dir=source, prefix="finetunes/j1/output", skip=("checkpoint-",)) == 2  # again
    assert s3_storage.stored_keys() == [
        "finetunes/j1/output/adapter_config.json",
        "finetunes/j1/output/nested/deep/weights.bin",
    ]
    copy = storage.download_dir(prefix="finetunes/j1/output", local_dir=tmp_path / "copy")
    assert (copy / "nested" / "deep" / "weights.bin").read_bytes() == b"\0" * 1000
    assert not (copy / "checkpoint-2").exists()

    ref = storage.stored_ref(prefix="finetunes/j1/output")
    assert storage.is_stored_ref(ref) and not storage.is_stored_ref(str(source))
    fetched = storage.fetched_dir(ref=ref)
    assert (fetched / "adapter_config.json").read_text() == "{}"
    assert storage.fetched_dir(ref=ref).stat().st_ino == fetched.stat().st_ino  # a complete copy is reused

    assert storage.delete_prefix(prefix="finetunes/j1") == 2
    assert s3_storage.stored_keys() == []
