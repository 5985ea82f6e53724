"""Hybrid retrieval for the rethink plugins: one ``HybridIndex`` per plugin, kept in its own directory.

- ``chunking``: statute articles (law) or headings/paragraphs/tables (generic), with character offsets;
- ``analyzer`` + ``sparse``: BM25 over CJK characters and bigrams and Latin words and word pairs;
- ``embeddings`` + ``dense``: sentence-transformers vectors in FAISS (exact, HNSW when large);
- ``index``: both sides, fused per query; ``profiles``: per-corpus settings and default weights;
- ``evaluate``: hit@k / recall@k on the shared dev sets (``python -m workers.retrieval.evaluate``).

Nothing here imports Django; inputs and outputs are plain dataclasses.
"""
