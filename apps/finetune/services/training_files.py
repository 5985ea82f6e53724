"""Training files: validated in full (streamed) on upload, stored only when usable."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from apps.core import storage
from apps.finetune.models import TrainingFile
from workers.errors import Conflict, InvalidRequest, PayloadTooLarge
from workers.finetune.validation import ValidationResult, validate_dataset


@contextmanager
def _upload_path(upload: UploadedFile) -> Iterator[Path]:
    """A filesystem path for the upload: Django's temporary file when it spooled one, else a copy."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())
        return
    with tempfile.NamedTemporaryFile(suffix=Path(upload.name or "").suffix) as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        yield Path(copy.name)


def _rejection(result: ValidationResult) -> InvalidRequest | PayloadTooLarge:
    errors = [issue.to_dict() for issue in result.errors]
    first = "; ".join(
        f"line {e['line']}" + (f" ({e['field']})" if e["field"] else "") + f": {e['message']}" for e in errors[:3]
    )
    message = result.message or f"{result.error_count} invalid record(s) of {result.total}: {first}"
    error_class = PayloadTooLarge if result.code == "file_too_large" else InvalidRequest
    return error_class(
        message,
        code=result.code or "invalid_records",
        param="file",
        details={"errors": errors, "error_count": result.error_count, "total": result.total},
    )


def training_file_create(
    *, owner: User, upload: UploadedFile, purpose: str = "fine-tune", skip_invalid_records: bool = False
) -> TrainingFile:
    """Validate the whole file (streamed) and store it only if every record is usable — or, with
    ``skip_invalid_records``, if at least one is (the others are then dropped when a job prepares the data)."""
    if purpose == "batch":  # the Batch API checks its own input files (JSONL requests, not training records)
        from apps.batches.services import batch_input_file_create

        return batch_input_file_create(owner=owner, upload=upload)
    if purpose != "fine-tune":
        raise InvalidRequest(
            "Only purposes 'fine-tune' and 'batch' are supported.", code="invalid_purpose", param="purpose"
        )
    size = upload.size or 0
    if size > settings.FINETUNE_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"The file is larger than {settings.FINETUNE_MAX_UPLOAD_BYTES} bytes.",
            code="file_too_large",
            param="file",
        )
    with _upload_path(upload) as path:
        result = validate_dataset(path=path, max_bytes=settings.FINETUNE_MAX_UPLOAD_BYTES, max_errors=20)
    usable = result.valid or (skip_invalid_records and result.code is None and result.valid_count > 0)
    if not usable:
        raise _rejection(result)
    return training_file_store(
        owner=owner,
        upload=upload,
        purpose=purpose,
        format=str(result.format),
        total=result.total,
        valid_count=result.valid_count,
        validation=result.to_dict(),
    )


def training_file_store(
    *,
    owner: User,
    upload: UploadedFile,
    purpose: str,
    format: str,
    total: int,
    valid_count: int,
    validation: dict[str, Any],
    default_name: str = "data",
) -> TrainingFile:
    """Store a checked upload (from its start) and its row together: no row without a file, nor the reverse."""
    upload.seek(0)
    with transaction.atomic():
        training_file = TrainingFile(
            owner=owner,
            filename=Path(upload.name or default_name).name[:255],
            bytes=upload.size or 0,
            purpose=purpose,
            format=format,
            total=total,
            valid_count=valid_count,
            validation=validation,
        )
        training_file.file.save(training_file.filename, upload, save=False)
        try:
            training_file.save()
        except Exception:
            training_file.file.delete(save=False)
            raise
    return training_file


def training_file_delete(*, training_file: TrainingFile) -> None:
    if training_file.training_jobs.exists() or training_file.validation_jobs.exists():
        raise Conflict("This file is used by a fine-tuning job and cannot be deleted.", code="file_in_use")
    with transaction.atomic():
        training_file.delete()
        # Once the row is gone for good: a deletion that rolls back keeps its file.
        storage.delete_after_commit(names=[training_file.file.name])
