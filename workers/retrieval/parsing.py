"""Uploaded or imported files → documents. Everything that can be checked without the index is checked here,
before anything is stored: a file this module rejects leaves no trace."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import PurePath
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import ElementTree

from workers.errors import DomainError, InvalidRequest, PayloadTooLarge

TEXT_EXTENSIONS = (".md", ".markdown", ".txt")
SUPPORTED_EXTENSIONS = (*TEXT_EXTENSIONS, ".jsonl", ".pdf", ".docx")
PDF_MAGIC = b"%PDF-"
_DOCX_MAX_XML_BYTES = 64 * 1024 * 1024
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MD_TITLE = re.compile(r"^\s*#\s+(.+?)\s*#*\s*$", re.M)


@dataclass
class ParsedDocument:
    external_id: str
    title: str
    text: str = ""
    url: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    blob: bytes | None = None  # a PDF, whose text is extracted at ingestion
    content_hash: str = ""


def clean_filename(name: str | None) -> str:
    base = PurePath((name or "").replace("\\", "/")).name
    return "".join(ch for ch in base if ch.isprintable()).strip()[:255]


def _hash(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


def _error(message: str, *, code: str, param: str) -> DomainError:
    return InvalidRequest(message, code=code, param=param)


def decode_text(data: bytes, *, name: str, param: str) -> str:
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _error(f"{name} is binary, not text.", code="unsupported_file_type", param=param)
    encodings = ("utf-16",) if data.startswith((b"\xff\xfe", b"\xfe\xff")) else ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if any(ord(ch) < 32 and ch not in "\t\n\r\f" for ch in text[:4096]):
            break  # control characters: a binary file that happens to decode
        return text
    raise _error(f"{name} is neither UTF-8 nor GB18030 text.", code="invalid_text_encoding", param=param)


def _jsonl_documents(text: str, *, name: str, param: str) -> list[ParsedDocument]:
    by_id: dict[str, ParsedDocument] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            message = f"{name} line {number}: invalid JSON ({exc.msg})."
            raise _error(message, code="invalid_jsonl", param=param) from None
        if not isinstance(record, dict):
            raise _error(f"{name} line {number}: not a JSON object.", code="invalid_jsonl", param=param)
        doc_id, body = record.get("id"), record.get("text")
        if not isinstance(doc_id, str | int) or isinstance(doc_id, bool) or not str(doc_id).strip():
            raise _error(f"{name} line {number}: `id` must be a non-empty string.", code="invalid_jsonl", param=param)
        if not isinstance(body, str) or not body.strip():
            raise _error(f"{name} line {number}: `text` must be a non-empty string.", code="invalid_jsonl", param=param)
        title, url = record.get("title") or "", record.get("url") or ""
        meta = record.get("meta")
        meta = meta if isinstance(meta, dict) else {}
        external_id = str(doc_id).strip()[:255]
        by_id[external_id] = ParsedDocument(
            external_id=external_id,
            title=str(title)[:500],
            text=body,
            url=str(url)[:1000],
            meta=meta,
            source=name,
            content_hash=_hash(str(title), body, str(url), json.dumps(meta, sort_keys=True)),
        )
    if not by_id:
        raise _error(f"{name} has no documents.", code="empty_file", param=param)
    return list(by_id.values())


def _docx_text(data: bytes, *, name: str, param: str) -> str:
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            info = archive.getinfo("word/document.xml")
            if info.file_size > _DOCX_MAX_XML_BYTES:
                raise PayloadTooLarge(f"{name} is too large once unpacked.", param=param)
            root = ElementTree.fromstring(archive.read(info))
    except (zipfile.BadZipFile, KeyError, ParseError, OSError):
        raise _error(f"{name} is not a valid .docx file.", code="invalid_docx", param=param) from None
    paragraphs = ["".join(node.text or "" for node in p.iter(f"{_W}t")) for p in root.iter(f"{_W}p")]
    return "\n\n".join(p for p in paragraphs if p.strip())


def parse_file(*, name: str, data: bytes, max_bytes: int, param: str = "file") -> list[ParsedDocument]:
    """The documents in one file (many for JSONL, one otherwise); raises ``DomainError`` for a file to reject."""
    filename = clean_filename(name)
    suffix = PurePath(filename).suffix.lower()
    if not filename or suffix not in SUPPORTED_EXTENSIONS:
        raise _error(
            f"Unsupported file type {suffix or filename or '(none)'!r}; upload one of "
            f"{', '.join(SUPPORTED_EXTENSIONS)}.",
            code="unsupported_file_type",
            param=param,
        )
    if not data:
        raise _error(f"{filename} is empty.", code="empty_file", param=param)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"{filename} is larger than the limit of {max_bytes} bytes.", param=param)
    stem = PurePath(filename).stem
    if suffix == ".pdf":
        if PDF_MAGIC not in data[:1024]:
            raise _error(f"{filename} is not a PDF.", code="invalid_pdf", param=param)
        return [ParsedDocument(external_id=filename, title=stem, source=filename, blob=data, content_hash=_hash(data))]
    if suffix == ".docx":
        text = _docx_text(data, name=filename, param=param)
    else:
        text = decode_text(data, name=filename, param=param)
    if suffix == ".jsonl":
        return _jsonl_documents(text, name=filename, param=param)
    if not text.strip():
        raise _error(f"{filename} has no text.", code="empty_file", param=param)
    heading = _MD_TITLE.search(text) if suffix in (".md", ".markdown") else None
    title = (heading.group(1) if heading else stem)[:500]
    return [
        ParsedDocument(external_id=filename, title=title, text=text, source=filename, content_hash=_hash(title, text))
    ]
