"""Fixture locations and a tiny PDF writer for the pdf2text tests.

The real PDFs live outside the repository, in the shared fixtures checkout beside it
(``../shared/fixtures/pdf``, see its README). ``make_pdf`` writes small synthetic documents for the
cases no real fixture covers: a page pypdf chokes on, a page that takes long, an unknown security
handler.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from apps.chat.models import ModelEndpoint

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PDF_ROOT = SHARED / "fixtures" / "pdf"

MakePdf = Callable[..., Path]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fixture_pdf" in metafunc.fixturenames:
        paths = sorted(PDF_ROOT.rglob("*.pdf"))
        metafunc.parametrize("fixture_pdf", paths, ids=[str(path.relative_to(PDF_ROOT)) for path in paths])


@pytest.fixture(scope="session")
def pdf_root() -> Path:
    if not PDF_ROOT.is_dir():
        pytest.skip(f"shared PDF fixtures not found at {PDF_ROOT}")
    return PDF_ROOT


def build_pdf(*, contents: list[bytes], trailer_extra: bytes = b"") -> bytes:
    """One page per content stream (Flate-compressed), Helvetica as /F1, a correct xref table."""
    page_ids = [4 + 2 * index for index in range(len(contents))]
    kids = b" ".join(b"%d 0 R" % page_id for page_id in page_ids)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(contents)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for page_id, content in zip(page_ids, contents, strict=True):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        data = zlib.compress(content)
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data))
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        trailer_extra,
        xref,
    )
    return bytes(out)


def text_page(text: str) -> bytes:
    return b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1")


@pytest.fixture
def make_pdf(tmp_path: Path) -> MakePdf:
    def make(*, contents: list[bytes], trailer_extra: bytes = b"", name: str = "synthetic.pdf") -> Path:
        path = tmp_path / name
        path.write_bytes(build_pdf(contents=contents, trailer_extra=trailer_extra))
        return path

    return make


def stored_files(root: str | Path) -> list[Path]:
    """Every file under ``root`` (MEDIA_ROOT in the API tests)."""
    return sorted(path for path in Path(root).rglob("*") if path.is_file())


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny TigerBot-format checkpoint (real tokenizer, real generation) for the summarization tests."""
    import torch

    from workers.runtime.tiny import make_tiny_model

    torch.set_num_threads(1)
    return make_tiny_model(tmp_path_factory.mktemp("tiny-summarizer") / "model", family="tigerbot")


@pytest.fixture
def small_model(db: None, tiny_chat_model: Path) -> ModelEndpoint:
    """``tiny-summarizer``: a real model whose input window (256 tokens) is a small fraction of a long document."""
    return ModelEndpoint.objects.create(
        name="tiny-summarizer", family="tigerbot", path=str(tiny_chat_model), max_input_tokens=256, max_new_tokens=16
    )


@pytest.fixture
def run_on_commit_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a test's transaction nothing ever commits, so ``transaction.on_commit`` callbacks (queueing a job,
    recording usage) would never run: run them at once, as they run right after a real commit. Much cheaper
    than a transactional test (a table flush after each), which only the tests with threads or a real worker
    need."""
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())
