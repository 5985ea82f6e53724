"""Results cross Celery as JSON; the command line prints the same JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workers.pdf import ErrorCode, PageText, PdfInfo, PdfMetadata, PdfResult, Status, main

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_result_round_trips_through_json() -> None:
    result = PdfResult(
        status=Status.SUCCEEDED,
        page_count=3,
        pages=[PageText(page=1, text="one"), PageText(page=3, text="", notes=["no_text_layer"])],
        metadata=PdfMetadata(title="T", author=None, producer="P", encrypted=True),
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["text"] == "one\f"
    assert data["status"] == "succeeded"
    assert PdfResult.from_dict(data) == result


def test_failure_round_trips_through_json() -> None:
    result = PdfResult.failure(ErrorCode.TIMEOUT, "too slow")
    data = json.loads(json.dumps(result.to_dict()))
    assert (data["status"], data["error_code"], data["pages"]) == ("failed", "timeout", [])
    assert PdfResult.from_dict(data) == result
    info = PdfInfo.failure(ErrorCode.PASSWORD_REQUIRED, "locked", encrypted=True)
    assert PdfInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info


def test_codes_compare_equal_to_their_strings() -> None:
    assert ErrorCode.WORKER_CRASHED == "worker_crashed"
    assert Status.FAILED == "failed"


def test_main_prints_json(pdf_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = pdf_root / "py-pdf-sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf"
    assert main([str(path), "--pages", "2-3", "--layout"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [page["page"] for page in data["pages"]] == [2, 3]
    assert main([str(path), "--inspect"]) == 0
    assert json.loads(capsys.readouterr().out)["page_count"] == 4


def test_module_entry_point(pdf_root: Path) -> None:
    path = pdf_root / "pdfminer/encryption/aes-256-r6.pdf"
    locked = subprocess.run(
        [sys.executable, "-m", "workers.pdf", str(path)], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert locked.returncode == 1
    assert json.loads(locked.stdout)["error_code"] == "password_required"
    opened = subprocess.run(
        [sys.executable, "-m", "workers.pdf", str(path), "--password", "usersecret"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert opened.returncode == 0
    assert json.loads(opened.stdout)["text"] == "Hello World"
