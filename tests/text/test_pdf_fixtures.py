"""Every real PDF under the shared fixtures, extracted without a password through the child process.

The expected outcome of each file is pinned (pypdf 7.1.0): encrypted files that need a password fail
with ``password_required``; four files fail with ``invalid_pdf`` because pypdf cannot open them:
pdfminer's hand-written ``simple1``/``simple3``/``issue-1113-evil-xobjects`` have no xref table and
no ``startxref`` (pdfminer falls back to scanning, pypdf does not), and ``unreadablemetadata`` (the
"unreadable meta data" sample) has a page tree pointing at objects that are not in the file. Every
other file succeeds. A timeout is accepted as a documented outcome but reported as a warning.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.text.conftest import PDF_ROOT
from workers.pdf import EXTRACTION_ERROR, NO_TEXT_LAYER, ErrorCode, PdfResult, Status, extract_pdf, inspect_pdf

pytestmark = pytest.mark.slow  # training / whole-fixture sweeps: run in the services pass of CI

TIME_LIMIT_S = 30

NEEDS_PASSWORD = {
    "pdfminer/encryption/aes-128-m.pdf",
    "pdfminer/encryption/aes-128.pdf",
    "pdfminer/encryption/aes-256-m.pdf",
    "pdfminer/encryption/aes-256-r6.pdf",
    "pdfminer/encryption/aes-256.pdf",
    "pdfminer/encryption/rc4-128.pdf",
    "pdfminer/encryption/rc4-40.pdf",
    "py-pdf-sample-files/005-libreoffice-writer-password/libreoffice-writer-password.pdf",
    "pypdf/resources/crazyones-encrypted-256.pdf",
    "pypdf/resources/encrypted-file.pdf",
    "pypdf/resources/libreoffice-writer-password.pdf",
    "pypdf/resources/encryption/r2-user-password.pdf",
    "pypdf/resources/encryption/r3-user-password.pdf",
    "pypdf/resources/encryption/r4-aes-user-password.pdf",
    "pypdf/resources/encryption/r4-user-password.pdf",
    "pypdf/resources/encryption/r6-both-passwords.pdf",
}
UNREADABLE_BY_PYPDF = {
    "pdfminer/contrib/issue-1113-evil-xobjects.pdf",
    "pdfminer/simple1.pdf",
    "pdfminer/simple3.pdf",
    "py-pdf-sample-files/017-unreadable-meta-data/unreadablemetadata.pdf",
}
# Encrypted, but with an empty user password (or, for r5/r6-user-password, an empty owner password:
# qpdf --encrypt "asdfzxcv" ""), so they open without one.
OPEN_WITHOUT_PASSWORD = {
    "pdfminer/contrib/issue-00352-asw-oct96-p41.pdf",
    "pdfminer/contrib/issue-00352-hash-twos-complement.pdf",
    "pdfminer/contrib/issue-625-identity-cmap.pdf",
    "pdfminer/encryption/encrypted_doc_no_id.pdf",
    "pypdf/resources/encrypted_doc_no_id.pdf",
    "pypdf/resources/encryption/r2-empty-password.pdf",
    "pypdf/resources/encryption/r2-owner-password.pdf",
    "pypdf/resources/encryption/r3-empty-password.pdf",
    "pypdf/resources/encryption/r4-aes-v2-no-key-length.pdf",
    "pypdf/resources/encryption/r4-owner-password.pdf",
    "pypdf/resources/encryption/r5-empty-password.pdf",
    "pypdf/resources/encryption/r5-owner-password.pdf",
    "pypdf/resources/encryption/r5-user-password.pdf",
    "pypdf/resources/encryption/r6-empty-password.pdf",
    "pypdf/resources/encryption/r6-owner-password.pdf",
    "pypdf/resources/encryption/r6-user-password.pdf",
}


def _expected_code(relative: str) -> ErrorCode | None:
    if relative in NEEDS_PASSWORD:
        return ErrorCode.PASSWORD_REQUIRED
    if relative in UNREADABLE_BY_PYPDF:
        return ErrorCode.INVALID_PDF
    return None


def _check_succeeded(result: PdfResult, *, encrypted: bool) -> None:
    assert result.error_code is None and result.error_message is None
    assert result.page_count is not None and result.page_count >= 1
    assert [page.page for page in result.pages] == list(range(1, result.page_count + 1))
    assert result.text.split("\f") == [page.text for page in result.pages]
    assert result.metadata.encrypted is encrypted
    for page in result.pages:
        assert all(note == NO_TEXT_LAYER or note.startswith(f"{EXTRACTION_ERROR}: ") for note in page.notes)
        assert (page.text == "") == bool(page.notes)
        assert "\x00" not in page.text


def _timed_extract(path: Path) -> tuple[PdfResult, float]:
    started = time.monotonic()
    result = extract_pdf(path=path, timeout_s=TIME_LIMIT_S)
    return result, time.monotonic() - started


@pytest.fixture(scope="module")
def sweep(request: pytest.FixtureRequest) -> dict[Path, tuple[PdfResult, float]]:
    """Extracts the selected fixtures a few at a time up front: each extraction is one mostly
    single-threaded child process, and the sweep is most of this directory's run time."""
    paths = [
        item.callspec.params["fixture_pdf"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_every_fixture_ends_in_a_documented_outcome"
    ]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
        return dict(zip(paths, pool.map(_timed_extract, paths), strict=True))


def test_every_fixture_ends_in_a_documented_outcome(
    fixture_pdf: Path, sweep: dict[Path, tuple[PdfResult, float]]
) -> None:
    relative = fixture_pdf.relative_to(PDF_ROOT).as_posix()
    result, elapsed = sweep[fixture_pdf]
    assert elapsed < TIME_LIMIT_S + 10
    assert PdfResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    if result.error_code is ErrorCode.TIMEOUT:
        warnings.warn(f"{relative} timed out after {TIME_LIMIT_S} s", stacklevel=1)
        return
    expected = _expected_code(relative)
    if expected is None:
        assert result.status is Status.SUCCEEDED, result.error_message
        _check_succeeded(result, encrypted=relative in OPEN_WITHOUT_PASSWORD)
    else:
        assert (result.status, result.error_code) == (Status.FAILED, expected)
        assert result.error_message and result.pages == []
        assert result.metadata.encrypted is (expected is ErrorCode.PASSWORD_REQUIRED)


def test_expectation_tables_name_real_files(pdf_root: Path) -> None:
    for relative in NEEDS_PASSWORD | UNREADABLE_BY_PYPDF | OPEN_WITHOUT_PASSWORD:
        assert (pdf_root / relative).is_file(), relative


def test_unreadable_files_carry_pypdfs_reason(pdf_root: Path) -> None:
    result = extract_pdf(path=pdf_root / "pdfminer/simple1.pdf")
    assert result.error_code is ErrorCode.INVALID_PDF
    assert result.error_message == "PdfReadError: startxref not found"


def test_deliberately_corrupted_zen_of_python_still_yields_its_text(pdf_root: Path) -> None:
    result = extract_pdf(path=pdf_root / "pdfminer/zen_of_python_corrupted.pdf")
    assert result.status is Status.SUCCEEDED
    assert "Beautiful is better than ugly." in result.text
    assert "Namespaces are one honking great idea" in result.text


@pytest.mark.parametrize(
    "relative",
    [
        "py-pdf-sample-files/019-grayscale-image/grayscale-image.pdf",
        "py-pdf-sample-files/007-imagemagick-images/imagemagick-lzw.pdf",
        "py-pdf-sample-files/023-cmyk-image/cmyk-image.pdf",
    ],
)
def test_image_only_page_succeeds_with_a_note(pdf_root: Path, relative: str) -> None:
    result = extract_pdf(path=pdf_root / relative)
    assert result.status is Status.SUCCEEDED
    assert result.pages[0].text == ""
    assert result.pages[0].notes == [NO_TEXT_LAYER]


def test_mixed_document_notes_only_the_pages_without_text(pdf_root: Path) -> None:
    result = extract_pdf(path=pdf_root / "py-pdf-sample-files/007-imagemagick-images/imagemagick-images.pdf")
    assert [bool(page.notes) for page in result.pages] == [False, False, False, True, True, False]


def test_metadata_is_read(pdf_root: Path) -> None:
    result = extract_pdf(path=pdf_root / "pdfminer/zen_of_python_corrupted.pdf")
    assert result.metadata.title == "zen_of_python.txt"
    assert result.metadata.producer == "GPL Ghostscript 9.18"
    assert result.metadata.author is None  # an empty /Author reads as absent


def _sample_files_with_page_counts() -> list[tuple[str, int, bool]]:
    listing = PDF_ROOT / "py-pdf-sample-files" / "files.json"
    if not listing.is_file():
        return []
    entries = json.loads(listing.read_text(encoding="utf-8"))["data"]
    return [
        (entry["path"], entry["pages"], entry["encrypted"])
        for entry in entries
        if entry.get("pages") and (PDF_ROOT / "py-pdf-sample-files" / entry["path"]).is_file()
    ]


@pytest.mark.parametrize(("relative", "pages", "encrypted"), _sample_files_with_page_counts())
def test_inspect_matches_the_documented_page_count(relative: str, pages: int, encrypted: bool) -> None:
    password = "openpassword" if encrypted else None  # the only encrypted sample, 005
    info = inspect_pdf(path=PDF_ROOT / "py-pdf-sample-files" / relative, password=password)
    if f"py-pdf-sample-files/{relative}" in UNREADABLE_BY_PYPDF:
        assert info.error_code is ErrorCode.INVALID_PDF
        return
    assert info.status is Status.SUCCEEDED, info.error_message
    assert (info.page_count, info.encrypted) == (pages, encrypted)
