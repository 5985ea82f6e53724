from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.retrieval.evaluate import EvalReport, Question, RelevantItem, evaluate, main, read_questions
from workers.retrieval.index import Hit

EVIDENCE = (
    "当事人一方不履行合同义务或者履行合同义务不符合约定的，应当承担继续履行、采取补救措施或者赔偿损失等违约责任。"
)


def _hit(doc_id: str, text: str) -> Hit:
    return Hit(doc_id=doc_id, ordinal=0, title="", url=None, text=text, start=0, end=len(text), score=1.0, scores={})


class CannedIndex:
    def __init__(self, answers: dict[str, list[Hit]]) -> None:
        self.answers = answers

    def search(
        self, *, query: str, top_k: int, tfidf_weight: float | None, embedding_weight: float | None
    ) -> list[Hit]:
        return self.answers[query][:top_k]


def test_hit_and_recall_follow_the_readme_definitions() -> None:
    spaced_prefix = "第五百七十七条 " + " ".join(EVIDENCE[:40]) + "（后文不同）"
    questions = [
        Question(
            qid="q1",
            question="违约怎么办",
            relevant=(
                RelevantItem(doc_id="civil", evidence=EVIDENCE),
                RelevantItem(doc_id="wiki", evidence=None),
            ),
        ),
        Question(qid="q2", question="另一个问题", relevant=(RelevantItem(doc_id="civil", evidence=EVIDENCE),)),
    ]
    index = CannedIndex(
        {
            "违约怎么办": [
                _hit("other-law", EVIDENCE),  # right words, wrong document
                _hit("civil", spaced_prefix),  # whitespace differs, only the first 40 characters match
                _hit("wiki", "any passage of the document counts when evidence is null"),
            ],
            "另一个问题": [_hit("civil", EVIDENCE[:39] + "……"), _hit("civil", EVIDENCE)],
        }
    )

    report = evaluate(index=index, questions=questions, ks=(1, 2, 3))

    assert report.n == 2
    assert report.hit_at == {1: 0.0, 2: 1.0, 3: 1.0}
    # q1: its two items first match at ranks 2 and 3; q2: its item at rank 2 (rank 1 holds only 39
    # of the 40 evidence characters).
    assert report.recall_at == {1: 0.0, 2: 0.75, 3: 1.0}
    assert report.p50_ms >= 0.0 and report.p95_ms >= report.p50_ms


def test_report_table_lists_every_cut_off() -> None:
    report = EvalReport(n=3, hit_at={1: 0.5, 10: 1.0}, recall_at={1: 0.25, 10: 0.75}, p50_ms=3.0, p95_ms=9.5)

    assert report.table().splitlines() == [
        "    k   hit@k  recall@k",
        "    1   0.500     0.250",
        "   10   1.000     0.750",
        "3 questions; search latency p50 3.0 ms, p95 9.5 ms",
    ]


def test_cli_builds_the_index_and_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus.jsonl"
    questions = tmp_path / "questions.jsonl"
    corpus.write_text(
        "\n".join(
            json.dumps({"id": doc_id, "title": title, "text": text, "url": None})
            for doc_id, title, text in [
                ("d1", "Cats", "Cats sleep for most of the day and hunt at night."),
                ("d2", "Finance", "Total revenue in 2019 was $1,496.5 million."),
            ]
        ),
        encoding="utf-8",
    )
    questions.write_text(
        json.dumps(
            {
                "qid": "q",
                "question": "What was the revenue in 2019?",
                "relevant": [{"doc_id": "d2", "evidence": None}],
            }
        ),
        encoding="utf-8",
    )

    assert main(argv=["--corpus", str(corpus), "--questions", str(questions), "--kind", "finance", "--k", "1,2"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("index ready: 2 chunks")
    assert lines[2:4] == ["    1   1.000     1.000", "    2   1.000     1.000"]
    assert read_questions(path=questions)[0].relevant == (RelevantItem(doc_id="d2", evidence=None),)
