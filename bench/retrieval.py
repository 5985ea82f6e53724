"""Retrieval benchmark on the law corpus: hybrid query latency and ingest efficiency, in one run.

Run: ``python bench/retrieval.py [--index-dir var/bench/retrieval-law] [--ingest-docs 80] [--rounds 6]``.

1. Ingest efficiency: the first ``--ingest-docs`` law documents, in ``--rounds`` slices, each slice
   ingested into a fresh index the way the platform does it (chunk + BM25 first, then the dense build:
   embed the pending chunks, add them to FAISS, save) and embedded bare (the same texts through the same
   engine, nothing else), in alternating order so that load changes on a shared host favour neither.
   Prints both throughputs in chunks/s and their ratio. Goal: >= 0.85.
2. Latency: p50/p95 of ``HybridIndex.search`` over the law dev questions on the full law corpus, with
   both weights non-zero so that every query is embedded. Goal: p50 <= 50 ms on 2 CPU cores. The full
   index is built (embedding ~66k chunks with multilingual-e5-small takes about an hour on 2 cores) and
   saved to ``--index-dir`` unless that directory already holds one.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.retrieval.documents import Document, default_corpora_dir, read_documents
from workers.retrieval.embeddings import TextEmbedder, load_embedder
from workers.retrieval.evaluate import open_or_build, read_questions
from workers.retrieval.index import HybridIndex
from workers.retrieval.profiles import get_profile

ROOT = Path(__file__).resolve().parents[1]


def _seconds(call: Callable[..., object], **arguments: object) -> float:
    started = time.perf_counter()
    call(**arguments)
    return time.perf_counter() - started


def _ingest(*, index: HybridIndex, documents: list[Document]) -> None:
    index.add_documents(documents=documents, embed=False)
    pending = index.pending_dense()
    index.add_vectors(
        ids=[chunk_id for chunk_id, _ in pending],
        vectors=index.embedder.embed_passages(texts=[text for _, text in pending]),
    )
    index.save()


def ingest_ratio(*, documents: list[Document], embedder: TextEmbedder, rounds: int) -> tuple[int, float, float]:
    """(chunks, ingest seconds, bare embedding seconds) over ``documents`` split into ``rounds`` slices."""
    profile = get_profile(kind="law")
    ingest_seconds = bare_seconds = 0.0
    chunks = 0
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as scratch:
        for round_number, part in enumerate(np.array_split(np.arange(len(documents)), rounds)):
            batch = [documents[i] for i in part]
            texts = [
                profile.dense_text(chunk.indexed_text)
                for document in batch
                for chunk in profile.chunk(text=document.text, title=document.title)
            ]
            index = HybridIndex(directory=Path(scratch) / str(round_number), profile=profile, embedder=embedder)
            # Alternate which goes first, so that neither always gets the warmer or quieter slot.
            if round_number % 2:
                bare_seconds += _seconds(embedder.embed_passages, texts=texts)
                ingest_seconds += _seconds(_ingest, index=index, documents=batch)
            else:
                ingest_seconds += _seconds(_ingest, index=index, documents=batch)
                bare_seconds += _seconds(embedder.embed_passages, texts=texts)
            chunks += len(texts)
    return chunks, ingest_seconds, bare_seconds


def query_latencies(*, index: HybridIndex, queries: list[str], weights: tuple[float, float]) -> np.ndarray:
    for query in queries[:5]:  # warm-up: model, tokenizer and FAISS code paths
        index.search(query=query, top_k=10, tfidf_weight=weights[0], embedding_weight=weights[1])
    latencies = []
    for query in queries:
        started = time.perf_counter()
        index.search(query=query, top_k=10, tfidf_weight=weights[0], embedding_weight=weights[1])
        latencies.append((time.perf_counter() - started) * 1000.0)
    return np.asarray(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path, default=default_corpora_dir())
    parser.add_argument("--questions", type=Path, default=default_corpora_dir().parent / "eval" / "law_dev.jsonl")
    parser.add_argument("--index-dir", type=Path, default=ROOT / "var" / "bench" / "retrieval-law")
    parser.add_argument("--ingest-docs", type=int, default=80, help="law documents for the ingest measurement")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--weights", default="1.0,0.5", help="tfidf_weight,embedding_weight for the queries")
    parser.add_argument("--rebuild", action="store_true", help="discard a saved full index first")
    args = parser.parse_args()
    weights = tuple(float(w) for w in args.weights.split(","))
    if len(weights) != 2 or not all(weights):
        parser.error("--weights needs two non-zero numbers, so that both sides of the search run")

    corpus = args.corpora / "law.jsonl"
    documents = read_documents(path=corpus)
    embedder = load_embedder()  # multilingual-e5-small, the platform's default
    embedder.embed_passages(texts=["warm-up"])

    chunks, ingest_seconds, bare_seconds = ingest_ratio(
        documents=documents[: args.ingest_docs], embedder=embedder, rounds=args.rounds
    )
    ingest_rate, bare_rate = chunks / ingest_seconds, chunks / bare_seconds
    print(f"ingest: {chunks} chunks from {args.ingest_docs} law documents in {args.rounds} rounds")
    print(f"  chunk+embed+index {ingest_rate:8.1f} chunks/s")
    print(f"  bare embedding    {bare_rate:8.1f} chunks/s")
    print(f"  ratio             {ingest_rate / bare_rate:8.3f}   (goal >= 0.85)")
    print(f"  ({embedder.model_path})")

    if args.rebuild:
        shutil.rmtree(args.index_dir, ignore_errors=True)
    started = time.perf_counter()
    index = open_or_build(corpus=corpus, kind="law", index_dir=args.index_dir)
    elapsed = time.perf_counter() - started
    print(f"full law index: {len(index)} chunks, ready in {elapsed:.1f} s ({args.index_dir})")
    queries = [question.question for question in read_questions(path=args.questions)]
    latencies = query_latencies(index=index, queries=queries, weights=weights)
    p50, p95 = np.percentile(latencies, [50, 95])
    print(f"hybrid search, weights {weights[0]}/{weights[1]}, top 10, query embedding included:")
    print(f"  {len(queries)} law dev questions")
    print(f"  p50 {p50:6.1f} ms   (goal <= 50 ms)")
    print(f"  p95 {p95:6.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
