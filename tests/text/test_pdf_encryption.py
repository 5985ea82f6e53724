"""Encrypted fixtures with their documented passwords (fixtures README, pypdf's and pdfminer's tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.text.conftest import MakePdf
from workers.pdf import ErrorCode, Status, extract_pdf, inspect_pdf

# (file, user password, owner password or None)
PASSWORDS = [
    (
        "py-pdf-sample-files/005-libreoffice-writer-password/libreoffice-writer-password.pdf",
        "openpassword",
        "permissionpassword",
    ),
    ("pypdf/resources/libreoffice-writer-password.pdf", "openpassword", "permissionpassword"),
    ("pypdf/resources/crazyones-encrypted-256.pdf", "password", None),
    ("pypdf/resources/encrypted-file.pdf", "test", None),
    ("pypdf/resources/encryption/r2-user-password.pdf", "asdfzxcv", None),
    ("pypdf/resources/encryption/r3-user-password.pdf", "asdfzxcv", None),
    ("pypdf/resources/encryption/r4-user-password.pdf", "asdfzxcv", None),
    ("pypdf/resources/encryption/r4-aes-user-password.pdf", "asdfzxcv", None),
    ("pypdf/resources/encryption/r6-both-passwords.pdf", "foo", "bar"),
    ("pdfminer/encryption/rc4-40.pdf", "foo", None),
    ("pdfminer/encryption/rc4-128.pdf", "foo", None),
    ("pdfminer/encryption/aes-128.pdf", "foo", None),
    ("pdfminer/encryption/aes-128-m.pdf", "foo", None),
    ("pdfminer/encryption/aes-256.pdf", "foo", None),
    ("pdfminer/encryption/aes-256-m.pdf", "foo", None),
    ("pdfminer/encryption/aes-256-r6.pdf", "usersecret", "ownersecret"),
]
IDS = [relative.rsplit("/", 2)[-2] + "/" + relative.rsplit("/", 1)[-1] for relative, _, _ in PASSWORDS]


@pytest.mark.parametrize(("relative", "user", "owner"), PASSWORDS, ids=IDS)
def test_opens_with_its_passwords(pdf_root: Path, relative: str, user: str, owner: str | None) -> None:
    for password in filter(None, [user, owner]):
        result = extract_pdf(path=pdf_root / relative, password=password)
        assert result.status is Status.SUCCEEDED, (password, result.error_message)
        assert result.metadata.encrypted is True
        assert result.text.strip()


@pytest.mark.parametrize(("relative", "user", "owner"), PASSWORDS, ids=IDS)
def test_fails_cleanly_without_or_with_a_wrong_password(
    pdf_root: Path, relative: str, user: str, owner: str | None
) -> None:
    missing = extract_pdf(path=pdf_root / relative)
    assert (missing.status, missing.error_code) == (Status.FAILED, ErrorCode.PASSWORD_REQUIRED)
    assert missing.metadata.encrypted is True
    wrong = extract_pdf(path=pdf_root / relative, password=user + "-wrong")
    assert (wrong.status, wrong.error_code) == (Status.FAILED, ErrorCode.INVALID_PASSWORD)


def test_empty_password_counts_as_no_password(pdf_root: Path) -> None:
    result = extract_pdf(path=pdf_root / "pdfminer/encryption/aes-256.pdf", password="")
    assert result.error_code is ErrorCode.PASSWORD_REQUIRED


def test_permissions_only_encryption_opens_without_a_password(pdf_root: Path) -> None:
    path = pdf_root / "pypdf/resources/encryption/r6-owner-password.pdf"
    result = extract_pdf(path=path)
    assert result.status is Status.SUCCEEDED
    assert result.metadata.encrypted is True
    assert "pdf encryption test" in result.text
    assert extract_pdf(path=path, password="asdfzxcv").status is Status.SUCCEEDED


def test_a_wrong_password_is_refused_even_where_none_is_needed(pdf_root: Path) -> None:
    result = extract_pdf(path=pdf_root / "pypdf/resources/encryption/r6-owner-password.pdf", password="nope")
    assert result.error_code is ErrorCode.INVALID_PASSWORD


def test_a_password_for_an_unencrypted_file_is_ignored(pdf_root: Path) -> None:
    result = extract_pdf(path=pdf_root / "pypdf/resources/crazyones.pdf", password="whatever")
    assert result.status is Status.SUCCEEDED
    assert result.metadata.encrypted is False


def test_inspect_reports_encryption(pdf_root: Path) -> None:
    path = pdf_root / "pdfminer/encryption/aes-256-r6.pdf"
    locked = inspect_pdf(path=path)
    assert (locked.error_code, locked.encrypted, locked.page_count) == (ErrorCode.PASSWORD_REQUIRED, True, None)
    wrong = inspect_pdf(path=path, password="nope")
    assert wrong.error_code is ErrorCode.INVALID_PASSWORD
    unlocked = inspect_pdf(path=path, password="usersecret")
    assert (unlocked.status, unlocked.page_count, unlocked.encrypted) == (Status.SUCCEEDED, 1, True)


def test_unknown_security_handler_is_unsupported_encryption(make_pdf: MakePdf) -> None:
    path = make_pdf(
        contents=[b"BT /F1 12 Tf (sealed) Tj ET"],
        trailer_extra=b"/Encrypt << /Filter /Adobe.PubSec /V 4 >> /ID [<00> <00>] ",
    )
    result = extract_pdf(path=path)
    assert (result.status, result.error_code) == (Status.FAILED, ErrorCode.UNSUPPORTED_ENCRYPTION)
    assert "Standard" in (result.error_message or "")
