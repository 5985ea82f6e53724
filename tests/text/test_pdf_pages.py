"""Page selection, layout mode, per-page failures, broken inputs, and text checked against the
expected output pypdf's test resources ship beside some PDFs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.text.conftest import MakePdf, text_page
from workers.pdf import (
    EXTRACTION_ERROR,
    ErrorCode,
    PageRange,
    PageRangeError,
    PdfResult,
    Status,
    extract_pdf,
    parse_page_ranges,
    select_pages,
)

FOUR_PAGES = "py-pdf-sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf"
RESOURCES = "pypdf/resources"

# (PDF, expected text file in pypdf/resources, layout mode, pages, comparison). "lines" is pypdf's
# own criterion (identical lines once trailing whitespace is dropped); "words" compares the word
# sequence, for the one file that pypdf produced with a layout option the API does not expose
# (font_height_weight) and that therefore differs only in the number of blank lines.
EXPECTED_TEXTS = [
    (f"{RESOURCES}/crazyones.pdf", "crazyones.txt", False, None, "lines"),
    (f"{RESOURCES}/crazyones.pdf", "crazyones_layout_vertical_space.txt", True, None, "lines"),
    (f"{RESOURCES}/crazyones.pdf", "crazyones_layout_vertical_space_font_height_weight.txt", True, None, "words"),
    (f"{RESOURCES}/toy.pdf", "toy.layout.txt", True, None, "lines"),
    ("py-pdf-sample-files/026-latex-multicolumn/multicolumn.pdf", "multicolumn-lorem-ipsum.txt", True, "1", "lines"),
    ("py-pdf-sample-files/010-pdflatex-forms/pdflatex-forms.pdf", "010-pdflatex-forms.txt", True, None, "lines"),
    (f"{RESOURCES}/pdflatex-forms.pdf", "010-pdflatex-forms.txt", True, None, "lines"),
]
# Expected-output files that cannot be compared: pypdf's tests download the PDFs for these from
# URLs (they are not among the fixtures), and jpeg.txt is the hex dump of an image, not text.
NOT_COMPARED = {"AEO.1172.layout.txt", "AEO.1172.layout.rot180.txt", "Epic.Page.layout.txt", "jpeg.txt"}


@pytest.fixture(scope="module")
def four_pages(pdf_root: Path) -> PdfResult:
    return extract_pdf(path=pdf_root / FOUR_PAGES)


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


@pytest.mark.parametrize(
    ("relative", "expected_name", "layout", "pages", "comparison"), EXPECTED_TEXTS, ids=[e[1] for e in EXPECTED_TEXTS]
)
def test_text_matches_the_shipped_expectation(
    pdf_root: Path, relative: str, expected_name: str, layout: bool, pages: str | None, comparison: str
) -> None:
    result = extract_pdf(path=pdf_root / relative, layout=layout, pages=pages)
    assert result.status is Status.SUCCEEDED
    expected = (pdf_root / RESOURCES / expected_name).read_text(encoding="utf-8")
    if comparison == "lines":
        assert _lines(result.text) == _lines(expected)
    else:
        assert result.text.split() == expected.split()


def test_every_expected_text_is_compared_or_explained(pdf_root: Path) -> None:
    compared = {expected_name for _, expected_name, _, _, _ in EXPECTED_TEXTS}
    shipped = {path.name for path in (pdf_root / RESOURCES).glob("*.txt")}
    assert shipped == compared | NOT_COMPARED


def test_encrypted_copy_yields_the_same_text(pdf_root: Path) -> None:
    plain = extract_pdf(path=pdf_root / RESOURCES / "crazyones.pdf")
    encrypted = extract_pdf(path=pdf_root / RESOURCES / "crazyones-encrypted-256.pdf", password="password")
    assert encrypted.text == plain.text
    assert (encrypted.metadata.encrypted, plain.metadata.encrypted) == (True, False)


def test_layout_mode_keeps_columns_side_by_side(pdf_root: Path) -> None:
    path = pdf_root / "py-pdf-sample-files/026-latex-multicolumn/multicolumn.pdf"
    plain = extract_pdf(path=path, pages="1")
    layout = extract_pdf(path=path, pages="1", layout=True)
    # The abstract heading (left column) shares its line with right-column text only in layout mode.
    assert any("Abstract" in line and "pellentesque" in line for line in layout.text.splitlines())
    assert not any("Abstract" in line and "pellentesque" in line for line in plain.text.splitlines())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("2-3", [2, 3]), ("4,1", [1, 4]), ("1-2, 2-3", [1, 2, 3]), (" 3 ", [3]), ("1-4", [1, 2, 3, 4])],
)
def test_page_selection(pdf_root: Path, four_pages: PdfResult, spec: str, expected: list[int]) -> None:
    result = extract_pdf(path=pdf_root / FOUR_PAGES, pages=spec)
    assert result.status is Status.SUCCEEDED
    assert result.page_count == 4
    assert [page.page for page in result.pages] == expected
    assert [page.text for page in result.pages] == [four_pages.pages[number - 1].text for number in expected]


@pytest.mark.parametrize("spec", ["5", "3-5", "1,9", "1-1000000000"])
def test_pages_beyond_the_document(pdf_root: Path, spec: str) -> None:
    result = extract_pdf(path=pdf_root / FOUR_PAGES, pages=spec)
    assert (result.status, result.error_code, result.page_count) == (Status.FAILED, ErrorCode.INVALID_PAGE_RANGE, 4)
    assert "4 page(s)" in (result.error_message or "")


@pytest.mark.parametrize("spec", ["", "0", "3-1", "a", "1,,2", "1-", "-2", "1.5", "²"])
def test_malformed_selection(pdf_root: Path, spec: str) -> None:
    result = extract_pdf(path=pdf_root / FOUR_PAGES, pages=spec)
    assert (result.status, result.error_code) == (Status.FAILED, ErrorCode.INVALID_PAGE_RANGE)
    with pytest.raises(PageRangeError):
        parse_page_ranges(spec=spec)


def test_selection_helpers() -> None:
    ranges = parse_page_ranges(spec="7, 2-3,3")
    assert ranges == (PageRange(first=7, last=7), PageRange(first=2, last=3), PageRange(first=3, last=3))
    assert select_pages(ranges=ranges, page_count=7) == [2, 3, 7]
    with pytest.raises(PageRangeError):
        select_pages(ranges=ranges, page_count=6)


def test_a_failing_page_is_noted_and_the_rest_kept(make_pdf: MakePdf) -> None:
    unterminated_string = b"BT /F1 12 Tf 72 720 Td (never closed Tj ET"
    path = make_pdf(contents=[text_page("first page"), unterminated_string, text_page("third page")])
    result = extract_pdf(path=path)
    assert result.status is Status.SUCCEEDED
    assert [page.text for page in result.pages] == ["first page", "", "third page"]
    assert result.pages[1].notes == [f"{EXTRACTION_ERROR}: PdfStreamError: Stream has ended unexpectedly"]
    assert result.text == "first page\f\fthird page"


def test_form_feed_and_nul_in_page_text_do_not_break_the_separator(make_pdf: MakePdf) -> None:
    path = make_pdf(contents=[text_page("a\fb\x00c"), text_page("d")])
    result = extract_pdf(path=path)
    assert [page.text for page in result.pages] == ["a\nbc", "d"]
    assert result.text.split("\f") == ["a\nbc", "d"]


def test_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_text("just some text, not a PDF\n")
    result = extract_pdf(path=path)
    assert (result.status, result.error_code) == (Status.FAILED, ErrorCode.INVALID_PDF)
    assert result.error_message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    result = extract_pdf(path=path)
    assert result.error_code is ErrorCode.INVALID_PDF
    assert "EmptyFileError" in (result.error_message or "")


def test_truncated_pdf_is_repaired_or_refused(tmp_path: Path, pdf_root: Path) -> None:
    data = (pdf_root / FOUR_PAGES).read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: len(data) // 2])
    result = extract_pdf(path=path)
    assert result.status is Status.SUCCEEDED or result.error_code is ErrorCode.INVALID_PDF


def test_missing_file(tmp_path: Path) -> None:
    result = extract_pdf(path=tmp_path / "absent.pdf")
    assert (result.status, result.error_code) == (Status.FAILED, ErrorCode.FILE_UNREADABLE)
