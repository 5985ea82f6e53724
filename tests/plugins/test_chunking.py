from __future__ import annotations

import itertools
import re

import pytest

from workers.retrieval.chunking import chunk_document, count_tokens
from workers.retrieval.documents import Document

ARTICLE_LINE = re.compile(r"^第[一二三四五六七八九十百千零〇两]+条(?:之[一二三四五六七八九十]+)?[ \u3000]", re.M)


def _by_title(documents: list[Document], title: str) -> Document:
    return next(document for document in documents if document.title == title)


def test_count_tokens_counts_cjk_characters_and_latin_words() -> None:
    assert count_tokens(text="我爱北京 hello world, revenue 1,496.5 in 2019!") == 4 + 2 + 1 + 1 + 1 + 1


def test_law_splits_at_articles_and_keeps_title_and_chapter(law_sample: list[Document]) -> None:
    criminal_law = _by_title(law_sample, "中华人民共和国刑法")
    chunks = chunk_document(text=criminal_law.text, title=criminal_law.title, kind="law", max_tokens=512)

    articles = [chunk for chunk in chunks if ARTICLE_LINE.match(chunk.text)]
    assert len(articles) == len(ARTICLE_LINE.findall(criminal_law.text))
    assert all(len(ARTICLE_LINE.findall(chunk.text)) <= 1 for chunk in chunks)
    self_defence = next(chunk for chunk in articles if chunk.text.startswith("第二十条 "))
    assert self_defence.heading == "第一编 总则 第二章 犯罪 第一节 犯罪和刑事责任"
    assert self_defence.indexed_text.startswith(
        "中华人民共和国刑法\n第一编 总则 第二章 犯罪 第一节 犯罪和刑事责任\n第二十条"
    )
    # Headings are indexing context only: no chunk text contains a heading line.
    assert not any(re.search(r"^#+ ", chunk.text, re.M) for chunk in chunks)
    assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))


def test_law_without_article_lines_falls_back_to_markdown_sections(law_sample: list[Document]) -> None:
    standard = _by_title(law_sample, "人体损伤程度鉴定标准")
    chunks = chunk_document(text=standard.text, title=standard.title, kind="law", max_tokens=256)

    serious = next(chunk for chunk in chunks if chunk.text.startswith("使人肢体残废"))
    assert serious.heading == "术语定义 重伤"
    assert serious.title == "人体损伤程度鉴定标准"


@pytest.mark.parametrize("max_tokens", [64, 512])
def test_offsets_point_into_the_original_text(law_sample: list[Document], max_tokens: int) -> None:
    for document in law_sample:
        chunks = chunk_document(text=document.text, title=document.title, kind="law", max_tokens=max_tokens)
        assert chunks, document.title
        for chunk in chunks:
            assert 0 <= chunk.start < chunk.end <= len(document.text)
            assert document.text[chunk.start : chunk.end] == chunk.text
            assert chunk.text == chunk.text.strip()


def test_long_article_is_sub_split_within_budget(law_sample: list[Document]) -> None:
    criminal_law = _by_title(law_sample, "中华人民共和国刑法")
    chunks = chunk_document(text=criminal_law.text, title=criminal_law.title, kind="law", max_tokens=64, overlap=0)

    assert all(count_tokens(text=chunk.text) <= 64 for chunk in chunks)
    article_starts = [m.start() for m in ARTICLE_LINE.finditer(criminal_law.text)]
    assert {chunk.start for chunk in chunks} >= set(article_starts)


def test_generic_split_respects_budget_and_overlap(wiki_sample: list[Document]) -> None:
    overlapping_pairs = 0
    for document in wiki_sample:
        chunks = chunk_document(text=document.text, title=document.title, max_tokens=60, overlap=20)
        for chunk in chunks:
            assert count_tokens(text=chunk.text) <= 60
            assert document.text[chunk.start : chunk.end] == chunk.text
            assert chunk.indexed_text.startswith(document.title)
        for previous, following in itertools.pairwise(chunks):
            assert previous.start < following.start and previous.end < following.end
            if following.start < previous.end:
                overlapping_pairs += 1
                assert count_tokens(text=document.text[following.start : previous.end]) <= 20
    assert overlapping_pairs > 10


def test_without_overlap_chunks_tile_the_document(wiki_sample: list[Document]) -> None:
    for document in wiki_sample:
        chunks = chunk_document(text=document.text, title=document.title, max_tokens=60, overlap=0)
        for previous, following in itertools.pairwise(chunks):
            assert previous.end <= following.start
            assert not document.text[previous.end : following.start].strip()


def test_finance_table_stays_in_one_chunk_when_it_fits(finance_sample: list[Document]) -> None:
    kept = 0
    for document in finance_sample:
        table = re.search(r"(?:^.* \| .*$\n?)+", document.text, re.M)
        assert table is not None
        table_text = table.group().strip()
        chunks = chunk_document(text=document.text, title=document.title, max_tokens=256, overlap=32)
        if count_tokens(text=table_text) <= 256:
            assert any(table_text in chunk.text for chunk in chunks), document.id
            kept += 1
        else:
            # Over budget: split between rows, never inside one.
            rows = {line.strip() for line in table_text.splitlines()}
            for chunk in chunks:
                if " | " in chunk.text:
                    assert all(line.strip() in rows for line in chunk.text.splitlines() if " | " in line)
    assert kept > 20


def test_run_without_boundaries_is_cut_at_token_starts() -> None:
    text = "word " * 250 + "终" * 30

    chunks = chunk_document(text=text, title="t", max_tokens=100, overlap=10)

    assert [count_tokens(text=chunk.text) for chunk in chunks] == [100, 100, 80]
    assert all(chunk.text == chunk.text.strip() for chunk in chunks)
    assert chunk_document(text=" \n\n ", title="t", kind="law") == []


def test_markdown_headings_start_sections_in_generic_text() -> None:
    text = "# Guide\n\nIntro words here.\n\n## Setup\n\nInstall it.\n\n## Usage\n\nRun it.\n"
    chunks = chunk_document(text=text, title="Doc", max_tokens=100)

    assert [(chunk.heading, chunk.text) for chunk in chunks] == [
        ("Guide", "Intro words here."),
        ("Guide Setup", "Install it."),
        ("Guide Usage", "Run it."),
    ]
