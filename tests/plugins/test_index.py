from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import pytest

from tests.plugins.conftest import HashEmbedder
from workers.retrieval.chunking import chunk_document
from workers.retrieval.documents import Document
from workers.retrieval.index import Hit, HybridIndex
from workers.retrieval.profiles import RetrievalProfile, default_weights, get_profile

QUERIES = ["正当防卫", "人体损伤程度鉴定的原则", "刑法修正案 恐怖活动", "走私武器 弹药", "Audit fees 2019"]


def _ranking(hits: list[Hit]) -> list[tuple[str, int, float]]:
    return [(hit.doc_id, hit.ordinal, round(hit.score, 6)) for hit in hits]


@pytest.fixture(scope="session")
def saved_law_index(tmp_path_factory: pytest.TempPathFactory, law_sample: list[Document]) -> Path:
    directory = tmp_path_factory.mktemp("saved") / "law"
    profile = dataclasses.replace(get_profile(kind="law"), embedding_weight=0.3)
    index = HybridIndex(directory=directory, profile=profile, embedder=HashEmbedder())
    index.add_documents(documents=law_sample)
    index.save()
    return directory


@pytest.fixture
def law_index(tmp_path: Path, saved_law_index: Path, hash_embedder: HashEmbedder) -> HybridIndex:
    """A private, writable copy of the law sample index."""
    shutil.copytree(saved_law_index, tmp_path / "law")
    return HybridIndex.load(directory=tmp_path / "law", embedder=hash_embedder)


def test_search_returns_chunks_with_their_document(law_index: HybridIndex, law_sample: list[Document]) -> None:
    hits = law_index.search(query="为了使国家、公共利益、本人或者他人的人身权利免受正在进行的不法侵害", top_k=5)

    assert hits[0].doc_id == "law-bd8528ce180b" and hits[0].text.startswith("第二十条")
    document = next(d for d in law_sample if d.id == hits[0].doc_id)
    assert document.text[hits[0].start : hits[0].end] == hits[0].text
    assert hits[0].title == document.title and hits[0].url == document.url
    assert set(hits[0].scores) == {"sparse", "dense"}
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_deleted_document_is_never_returned(law_index: HybridIndex, law_sample: list[Document]) -> None:
    criminal_law = next(d for d in law_sample if d.title == "中华人民共和国刑法")
    chunks_before = len(law_index)

    assert law_index.delete_document(external_id=criminal_law.id)
    assert not law_index.delete_document(external_id=criminal_law.id)
    assert criminal_law.id not in law_index and len(law_index) < chunks_before
    for query in [*QUERIES, criminal_law.text[2000:2100]]:
        for weights in [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]:
            hits = law_index.search(query=query, top_k=200, tfidf_weight=weights[0], embedding_weight=weights[1])
            assert criminal_law.id not in {hit.doc_id for hit in hits}


def test_reload_gives_the_same_ranking(
    law_index: HybridIndex, law_sample: list[Document], hash_embedder: HashEmbedder
) -> None:
    law_index.delete_document(external_id=law_sample[3].id)
    before = {query: _ranking(law_index.search(query=query, top_k=20)) for query in QUERIES}
    law_index.save()

    reloaded = HybridIndex.load(directory=law_index.directory, embedder=hash_embedder)

    assert reloaded.profile == law_index.profile
    assert len(reloaded) == len(law_index) and law_sample[3].id not in reloaded
    assert {query: _ranking(reloaded.search(query=query, top_k=20)) for query in QUERIES} == before
    # Still writable after a reload: new ids do not collide with the saved ones.
    reloaded.add_documents(documents=[law_sample[3]])
    assert reloaded.search(query=law_sample[3].text[:60], top_k=1)[0].doc_id == law_sample[3].id
    reloaded.save()
    assert len(HybridIndex.load(directory=law_index.directory, embedder=hash_embedder)) == len(reloaded)


def test_adding_a_document_again_replaces_it(law_index: HybridIndex, law_sample: list[Document]) -> None:
    chunks = len(law_index)
    original = law_sample[4]
    revised = dataclasses.replace(original, text=original.text + "\n\n本修正案自二〇二五年一月一日起施行。")

    def chunk_count(document: Document) -> int:
        profile = law_index.profile
        return len(chunk_document(text=document.text, title=document.title, kind="law", max_tokens=profile.max_tokens))

    added = law_index.add_documents(documents=[revised])

    assert added == chunk_count(revised)
    assert len(law_index) == chunks - chunk_count(original) + added
    hits = law_index.search(query="二〇二五年一月一日起施行", top_k=3)
    assert hits[0].doc_id == original.id and "二〇二五" in hits[0].text


def test_same_id_twice_in_one_batch_keeps_the_last(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    index = HybridIndex(directory=tmp_path / "twice", profile=get_profile(kind="generic"), embedder=hash_embedder)
    index.add_documents(
        documents=[
            Document(id="d", title="t", text="first version"),
            Document(id="d", title="t", text="second"),
        ]
    )

    assert len(index) == 1
    assert [hit.text for hit in index.search(query="version second", top_k=5)] == ["second"]
    with pytest.raises(ValueError, match="not both 0"):
        index.search(query="second", tfidf_weight=0.0, embedding_weight=0.0)


def test_weights_decide_between_lexical_and_semantic_matches(tmp_path: Path) -> None:
    """Real embeddings: the pure-sparse and pure-dense orders differ, and the weights pick one."""
    documents = [
        Document(id="lexical", title="Forms", text="Automobile registration office forms: automobile form A-38."),
        Document(id="semantic", title="Garage", text="How to fix a broken car engine yourself at home."),
        Document(id="other", title="Cooking", text="Slow-cooked tomato sauce with basil and garlic."),
    ]
    index = HybridIndex(directory=tmp_path / "cars", profile=get_profile(kind="generic"))
    index.add_documents(documents=documents)
    query = "automobile repair"

    sparse_only = index.search(query=query, top_k=3, tfidf_weight=1.0, embedding_weight=0.0)
    dense_only = index.search(query=query, top_k=3, tfidf_weight=0.0, embedding_weight=1.0)

    assert [hit.doc_id for hit in sparse_only] == ["lexical"]  # BM25 returns only chunks sharing a term
    assert dense_only[0].doc_id == "semantic"
    assert all(hit.scores["dense"] == 0.0 for hit in sparse_only)
    assert all(hit.scores["sparse"] == 0.0 for hit in dense_only)
    hybrid = index.search(query=query, top_k=3, tfidf_weight=1.0, embedding_weight=1.0)
    for hit in hybrid:
        assert hit.score == pytest.approx(hit.scores["sparse"] + hit.scores["dense"])
    assert max(hit.scores["dense"] for hit in hybrid) == pytest.approx(1.0)


def _cited(name: str, *, by: int) -> list[Document]:
    return [
        Document(id=f"interpretation-{i}", title=f"关于适用《{name}》的解释之{i}", text=f"第一条 根据《{name}》制定。")
        for i in range(by)
    ]


def test_documents_cited_by_others_rank_higher(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    same_text = "第一条 承租人应当按期支付租金。"
    documents = [
        Document(id="regulation", title="某某管理办法", text=same_text + "《某某管理办法》自公布之日起施行。"),
        # The qualifier in （…） is not part of the cited name; a document citing itself does not count.
        Document(id="statute", title="中华人民共和国某某法（总则）", text=same_text),
        *_cited("中华人民共和国某某法", by=2),
    ]
    # b=0: no length normalisation, so both chunks have the same BM25 score before the prior.
    profile = RetrievalProfile(chunk_kind="law", embedding_weight=0.0, b=0.0, citation_weight=0.2)
    index = HybridIndex(directory=tmp_path / "cited", profile=profile, embedder=hash_embedder)
    index.add_documents(documents=documents)

    def statute_over_regulation() -> float:
        by_id = {hit.doc_id: hit.score for hit in index.search(query="支付租金", top_k=2)}
        return by_id["statute"] / by_id["regulation"]

    assert statute_over_regulation() == pytest.approx(1 + 0.2 * math.log(3))
    index.delete_document(external_id="interpretation-0")
    assert statute_over_regulation() == pytest.approx(1 + 0.2 * math.log(2))
    index.save()
    index = HybridIndex.load(directory=tmp_path / "cited", embedder=hash_embedder)
    assert statute_over_regulation() == pytest.approx(1 + 0.2 * math.log(2))
    index.add_documents(documents=_cited("中华人民共和国某某法", by=4))  # replaces interpretation-1
    assert statute_over_regulation() == pytest.approx(1 + 0.2 * math.log(5))


def test_saved_index_takes_its_profiles_retuned_query_settings(
    tmp_path: Path, hash_embedder: HashEmbedder, law_sample: list[Document]
) -> None:
    law = get_profile(kind="law")
    for name, saved, expected in [
        ("retuned", dataclasses.replace(law, k1=0.9, citation_weight=0.0), law),
        ("rechunked", dataclasses.replace(law, max_tokens=128, citation_weight=0.0), None),
    ]:
        index = HybridIndex(directory=tmp_path / name, profile=saved, embedder=hash_embedder)
        index.add_documents(documents=law_sample)
        index.save()

        loaded = HybridIndex.load(directory=tmp_path / name, embedder=hash_embedder)

        assert loaded.profile == (expected or saved)  # chunks stored another way keep the settings they had
        fresh = HybridIndex(directory=tmp_path / f"{name}-fresh", profile=loaded.profile, embedder=hash_embedder)
        fresh.add_documents(documents=law_sample)
        for query in QUERIES:
            assert _ranking(loaded.search(query=query, top_k=5)) == _ranking(fresh.search(query=query, top_k=5))


def test_profile_from_older_versions_loads() -> None:
    data = {**get_profile(kind="wiki").to_json(), "title_boosts": [["^x", 1.3]]}
    del data["citation_weight"]

    assert RetrievalProfile.from_json(data=data) == get_profile(kind="wiki")


def test_default_weights_table() -> None:
    assert default_weights(kind="law") == (
        get_profile(kind="law").tfidf_weight,
        get_profile(kind="law").embedding_weight,
    )
    with pytest.raises(ValueError, match="unknown retrieval profile"):
        default_weights(kind="poetry")
