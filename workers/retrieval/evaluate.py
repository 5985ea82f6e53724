"""Retrieval evaluation on question sets whose answers are (document, evidence) pairs.

A retrieved passage is relevant to an item when it comes from the item's document and, where the item
has evidence, contains the first 40 non-whitespace characters of that evidence (whitespace removed on
both sides). hit@k: some relevant passage among the top k. recall@k: the share of a question's items
that have a relevant passage among the top k, averaged over questions.

    python -m workers.retrieval.evaluate --corpus ../shared/corpora/law.jsonl \
        --questions ../shared/eval/law_dev.jsonl --kind law --k 1,5,10,100
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from workers.retrieval.documents import read_documents, read_jsonl
from workers.retrieval.index import Hit, HybridIndex
from workers.retrieval.profiles import get_profile

_WHITESPACE = re.compile(r"\s+")
_EVIDENCE_PREFIX = 40


class Searchable(Protocol):
    def search(
        self, *, query: str, top_k: int, tfidf_weight: float | None, embedding_weight: float | None
    ) -> list[Hit]: ...


@dataclass(frozen=True, slots=True)
class RelevantItem:
    doc_id: str
    evidence: str | None


@dataclass(frozen=True, slots=True)
class Question:
    qid: str
    question: str
    relevant: tuple[RelevantItem, ...]


@dataclass(frozen=True, slots=True)
class EvalReport:
    n: int
    hit_at: dict[int, float]
    recall_at: dict[int, float]
    p50_ms: float
    p95_ms: float

    def table(self) -> str:
        rows = [f"{'k':>5} {'hit@k':>7} {'recall@k':>9}"]
        rows += [f"{k:>5} {self.hit_at[k]:>7.3f} {self.recall_at[k]:>9.3f}" for k in sorted(self.hit_at)]
        rows.append(f"{self.n} questions; search latency p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms")
        return "\n".join(rows)


def read_questions(*, path: Path) -> list[Question]:
    """One JSON question per line: ``qid``, ``question`` and ``relevant`` (``doc_id``, optional ``evidence``)."""
    return [
        Question(
            qid=record["qid"],
            question=record["question"],
            relevant=tuple(RelevantItem(doc_id=r["doc_id"], evidence=r.get("evidence")) for r in record["relevant"]),
        )
        for record in read_jsonl(path=path)
    ]


def first_match_ranks(*, hits: Sequence[Hit], relevant: Sequence[RelevantItem]) -> list[int | None]:
    """Per relevant item, the 0-based rank of the first relevant passage among ``hits`` (None if absent)."""
    keys = [_WHITESPACE.sub("", item.evidence)[:_EVIDENCE_PREFIX] if item.evidence else None for item in relevant]
    ranks: list[int | None] = [None] * len(relevant)
    for rank, hit in enumerate(hits):
        compact: str | None = None
        for i, item in enumerate(relevant):
            if ranks[i] is not None or hit.doc_id != item.doc_id:
                continue
            key = keys[i]
            if key is not None:
                compact = _WHITESPACE.sub("", hit.text) if compact is None else compact
                if key not in compact:
                    continue
            ranks[i] = rank
    return ranks


def evaluate(
    *,
    index: Searchable,
    questions: Sequence[Question],
    ks: Sequence[int] = (1, 5, 10, 100),
    tfidf_weight: float | None = None,
    embedding_weight: float | None = None,
) -> EvalReport:
    depth = max(ks)
    hits_at = dict.fromkeys(ks, 0.0)
    recall_at = dict.fromkeys(ks, 0.0)
    latencies: list[float] = []
    for question in questions:
        started = time.perf_counter()
        hits = index.search(
            query=question.question, top_k=depth, tfidf_weight=tfidf_weight, embedding_weight=embedding_weight
        )
        latencies.append((time.perf_counter() - started) * 1000.0)
        ranks = first_match_ranks(hits=hits, relevant=question.relevant)
        for k in ks:
            found = [rank is not None and rank < k for rank in ranks]
            hits_at[k] += any(found)
            recall_at[k] += sum(found) / len(found) if found else 0.0
    n = len(questions)
    return EvalReport(
        n=n,
        hit_at={k: hits_at[k] / n if n else 0.0 for k in ks},
        recall_at={k: recall_at[k] / n if n else 0.0 for k in ks},
        p50_ms=float(np.percentile(latencies, 50)) if latencies else 0.0,
        p95_ms=float(np.percentile(latencies, 95)) if latencies else 0.0,
    )


def open_or_build(*, corpus: Path, kind: str, index_dir: Path) -> HybridIndex:
    """Load the index saved in ``index_dir``, or build it from ``corpus`` and save it there."""
    if (index_dir / "meta.json").exists():
        return HybridIndex.load(directory=index_dir)
    index = HybridIndex(directory=index_dir, profile=get_profile(kind=kind))
    index.add_documents(documents=read_documents(path=corpus))
    index.save()
    return index


def main(*, argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="documents, one JSON object per line")
    parser.add_argument("--questions", type=Path, required=True, help="questions, one JSON object per line")
    parser.add_argument("--kind", default="generic", help="retrieval profile: law, wiki, finance or generic")
    parser.add_argument("--k", default="1,5,10,100", help="comma-separated cut-offs")
    parser.add_argument("--index-dir", type=Path, help="reuse (or build and keep) the index in this directory")
    parser.add_argument("--tfidf-weight", type=float, help="override the profile's sparse weight")
    parser.add_argument("--embedding-weight", type=float, help="override the profile's dense weight")
    args = parser.parse_args(argv)
    ks = sorted({int(k) for k in args.k.split(",")})
    with tempfile.TemporaryDirectory(prefix="rethink-eval-") as scratch:
        started = time.perf_counter()
        index = open_or_build(corpus=args.corpus, kind=args.kind, index_dir=args.index_dir or Path(scratch) / "index")
        print(f"index ready: {len(index)} chunks in {time.perf_counter() - started:.1f} s")
        report = evaluate(
            index=index,
            questions=read_questions(path=args.questions),
            ks=ks,
            tfidf_weight=args.tfidf_weight,
            embedding_weight=args.embedding_weight,
        )
    print(report.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
