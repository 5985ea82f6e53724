"""Uploaded files checked (how many, how large) and parsed into documents, for ingestion and previews alike."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from workers.errors import InvalidRequest, PayloadTooLarge
from workers.retrieval.parsing import ParsedDocument, parse_file


def uploads_parse(*, uploads: Sequence[UploadedFile]) -> list[tuple[ParsedDocument, str]]:
    """Every document in ``uploads``, with the multipart parameter (``file`` or ``file[i]``) it came from; any bad
    file raises a ``DomainError`` naming it."""
    if len(uploads) > settings.PLUGINS_MAX_FILES_PER_UPLOAD:
        raise InvalidRequest(f"At most {settings.PLUGINS_MAX_FILES_PER_UPLOAD} files per request.", param="file")
    parsed: list[tuple[ParsedDocument, str]] = []
    for position, upload in enumerate(uploads):
        param = "file" if len(uploads) == 1 else f"file[{position}]"
        if (upload.size or 0) > settings.PLUGINS_MAX_UPLOAD_BYTES:  # before reading it
            raise PayloadTooLarge(
                f"{upload.name} is larger than the limit of {settings.PLUGINS_MAX_UPLOAD_BYTES} bytes.",
                code="file_too_large",
                param=param,
            )
        upload.seek(0)
        data = upload.read()
        documents = parse_file(
            name=upload.name or "", data=data, param=param, max_bytes=settings.PLUGINS_MAX_UPLOAD_BYTES
        )
        parsed += [(document, param) for document in documents]
    return parsed
