"""Per-corpus retrieval settings (chunking, BM25, fusion weights), chosen on the dev sets.

Measured with ``python -m workers.retrieval.evaluate``; see the figures quoted per profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from workers.retrieval.analyzer import Analyzer
from workers.retrieval.chunking import Chunk, ChunkKind, chunk_document

# Question wording, cut from queries so that BM25 ranks on content. Chinese: layperson phrasing
# (我老公打我怎么办); English: question and arithmetic words ("what was the percentage change in …"),
# which name the computation asked for, not the figures, and match unrelated narrative text.
QUESTION_WORDS = (
    "怎么办", "怎么样", "怎么", "什么样", "什么", "为什么", "是否", "可以", "能否", "能不能", "可不可以",
    "如何", "哪些", "哪个", "需要", "应该", "应当", "有没有", "吗", "呢", "吧", "啊", "呀", "我们", "我",
    "你", "他们", "他", "她", "请问", "一下", "的话", "这种", "这个", "那个", "情况下", "情况", "问题",
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "was", "were", "are",
    "be", "been", "the", "a", "an", "of", "in", "on", "for", "to", "from", "and", "or", "by", "with",
    "between", "did", "does", "do", "its", "it", "their", "there", "this", "that", "these", "those", "as",
    "at", "change", "changes", "percentage", "average", "difference", "increase", "decrease", "proportion",
    "ratio", "respective", "respectively", "value", "amount", "many", "much",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RetrievalProfile:
    """``document_weight`` adds the document's best normalised chunk score to each of its chunks;
    ``citation_weight`` c multiplies the score of a document's chunks by 1 + c·ln(1 + n), where n is the
    number of other documents in the index that cite it as 《title》 (an authority prior, like in-links on
    the web: the statutes that regulations and interpretations build on are the ones most questions need).

    Only ``chunk_kind``, ``max_tokens`` and ``overlap`` shape what is stored; the rest is read at query
    time, so a saved index picks up its profile's retuned query settings without a rebuild (``upgraded``)."""

    name: str = "generic"
    chunk_kind: ChunkKind = "generic"
    max_tokens: int = 256
    overlap: int = 32
    tfidf_weight: float = 1.0
    embedding_weight: float = 0.75
    k1: float = 1.2
    b: float = 0.75
    unigram_weight: float = 1.0
    stop_phrases: tuple[str, ...] = QUESTION_WORDS
    document_weight: float = 0.0
    citation_weight: float = 0.0
    # The dense side embeds at most this many characters of a chunk's indexed text (0: all of it); BM25 always
    # reads all of it.
    dense_max_chars: int = 0

    def dense_text(self, text: str) -> str:
        return text[: self.dense_max_chars] if self.dense_max_chars else text

    def indexing_settings(self) -> tuple[str, int, int]:
        return self.chunk_kind, self.max_tokens, self.overlap

    def chunk(self, *, text: str, title: str) -> list[Chunk]:
        """A document's chunks as this profile cuts them (what is indexed, previewed and stored as segments)."""
        return chunk_document(
            text=text, title=title, kind=self.chunk_kind, max_tokens=self.max_tokens, overlap=self.overlap
        )

    def analyzer(self) -> Analyzer:
        return Analyzer(stop_phrases=self.stop_phrases, unigram_weight=self.unigram_weight)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, *, data: dict[str, Any]) -> RetrievalProfile:
        """Settings this version no longer has are dropped; missing ones take their defaults."""
        known = {name: value for name, value in data.items() if name in cls.__dataclass_fields__}
        return cls(**{**known, "stop_phrases": tuple(known.get("stop_phrases", ()))})


PROFILES: dict[str, RetrievalProfile] = {
    # Statutes, one article per chunk. Dense side: multilingual-e5-small over the first 128 characters of each
    # chunk (title, chapter and the article's opening: 72% of the text, a full embedding of the corpus would take
    # over an hour and a half on 2 cores), with candidate pools of 400 per side. Dev hit@10 / recall@100:
    # BM25 + citation prior 0.700 / 0.776 (the previous profile, MiniLM reading Chinese as [UNK]); dense alone
    # 0.600 / 0.720; hybrid at embedding weight 0.25 / 0.5 / 1.0 with cosines taken as they are 0.697 / 0.667 /
    # 0.620; relative to e5's cosine floor (see HybridIndex) at weight 1.0: 0.713 / 0.802 (pool 100), with the
    # citation prior lowered to 0.1 0.737 / 0.812 (pool 400); citation 0.15 gives 0.723 / 0.822.
    "law": RetrievalProfile(
        name="law",
        chunk_kind="law",
        max_tokens=512,
        overlap=32,
        tfidf_weight=1.0,
        embedding_weight=1.0,
        k1=1.5,
        unigram_weight=0.5,
        document_weight=0.2,
        citation_weight=0.1,
        dense_max_chars=128,
    ),
    # Mixed Chinese/English encyclopedia passages. Dev hit@1 with multilingual-e5-small, tfidf 1.0: BM25 alone
    # 0.953, embedding weight 0.5 / 1.0 on raw cosines 0.955 / 0.958, weight 0.75 relative to e5's cosine floor
    # 0.967 (1.5: 0.964). (MiniLM, before: 0.965 at 0.75.)
    "wiki": RetrievalProfile(name="wiki"),
    # Annual-report excerpts (English, tables). Dev hit@10: 0.880 with BM25 alone (a k1/b/document-weight grid
    # stays within 0.866–0.883), 0.882–0.885 with e5 at embedding weight 0.25 whatever the normalisation; more
    # dense weight lowers it (1.0: 0.842–0.881); dense alone 0.657. Most misses name no company or year ("What
    # does the table show?").
    "finance": RetrievalProfile(name="finance", max_tokens=512, overlap=48, embedding_weight=0.25),
    "generic": RetrievalProfile(),
}


def get_profile(*, kind: str) -> RetrievalProfile:
    try:
        return PROFILES[kind]
    except KeyError:
        raise ValueError(f"unknown retrieval profile {kind!r}; known: {', '.join(PROFILES)}") from None


def upgraded(*, saved: RetrievalProfile) -> RetrievalProfile:
    """The current profile of ``saved``'s name where it stores chunks the same way, else ``saved`` itself."""
    current = PROFILES.get(saved.name)
    if current is not None and current.indexing_settings() == saved.indexing_settings():
        return current
    return saved


def default_weights(*, kind: str) -> tuple[float, float]:
    """(tfidf_weight, embedding_weight) chosen on the dev set of ``kind``."""
    profile = get_profile(kind=kind)
    return profile.tfidf_weight, profile.embedding_weight
