from __future__ import annotations

from pathlib import Path

import numpy as np

from workers.retrieval.analyzer import Analyzer
from workers.retrieval.sparse import SparseIndex

TEXTS = [
    "合同当事人一方不履行合同义务的，应当承担违约责任。",
    "出租人应当按照约定将租赁物交付承租人。",
    "承租人应当按照约定的期限支付租金。",
    "Total revenue in 2019 was $1,496.5 million.",
    "Revenues by segment are shown below.",
    "债权人可以将债权的全部或者部分转让给第三人。",
]
QUERIES = ["承租人不支付租金怎么办", "revenue 2019", "债权转让", "违约责任"]


def _scores(index: SparseIndex, query: str) -> dict[int, float]:
    found = index.score(query=query)
    return dict(zip(found.ids.tolist(), found.scores.tolist(), strict=True))


def test_analyzer_emits_cjk_unigrams_bigrams_and_normalised_latin_terms() -> None:
    analyzer = Analyzer(stop_phrases=("怎么办",), unigram_weight=0.5)

    assert analyzer.terms(text="租金 Total Revenues: 1,496.5") == [
        "租",
        "金",
        "租金",
        "total",
        "revenue",
        "total revenue",
        "1496.5",
    ]
    assert "revenue 1496.5" not in analyzer.terms(text="revenue 1496.5") and "a b" not in analyzer.terms(text="a, b")
    assert analyzer.query_weights(query="租金怎么办") == {"租": 0.5, "金": 0.5, "租金": 1.0}


def test_bm25_prefers_the_chunk_sharing_rare_terms() -> None:
    index = SparseIndex()
    index.add(ids=list(range(len(TEXTS))), texts=TEXTS)

    for query, expected in zip(QUERIES, [2, 3, 5, 0], strict=True):
        scores = _scores(index, query)
        assert max(scores, key=scores.__getitem__) == expected, query


def test_add_and_remove_match_an_index_built_from_the_survivors(tmp_path: Path) -> None:
    incremental = SparseIndex()
    incremental.add(ids=[0, 1, 2], texts=TEXTS[:3])
    incremental.add(ids=[3, 4, 5], texts=TEXTS[3:])
    incremental.remove(ids=[1, 4])
    rebuilt = SparseIndex()
    rebuilt.add(ids=[0, 2, 3, 5], texts=[TEXTS[0], TEXTS[2], TEXTS[3], TEXTS[5]])

    assert len(incremental) == len(rebuilt) == 4
    for query in QUERIES:
        expected = _scores(rebuilt, query)
        assert _scores(incremental, query) == expected
        incremental.compact()
        assert _scores(incremental, query) == expected

    incremental.save(directory=tmp_path)
    reloaded = SparseIndex.load(directory=tmp_path, analyzer=Analyzer())
    for query in QUERIES:
        got, expected = _scores(reloaded, query), _scores(rebuilt, query)
        assert got.keys() == expected.keys()
        assert np.allclose(list(got.values()), list(expected.values()))


def test_lookup_and_top_of_scores() -> None:
    index = SparseIndex()
    index.add(ids=[10, 20, 30], texts=TEXTS[:3])
    scores = index.score(query="承租人 租金")

    assert scores.lookup(ids=np.array([30, 10, 99])).tolist()[2] == 0.0
    assert scores.top(limit=1).ids.tolist() == [30]


def test_latin_stop_phrases_drop_whole_words_only() -> None:
    analyzer = Analyzer(stop_phrases=("what", "the", "change"))

    assert set(analyzer.query_weights(query="What was the change in Whatever costs?")) == {
        "was", "in", "whatever", "cost", "in whatever", "whatever cost",
    }  # fmt: skip
