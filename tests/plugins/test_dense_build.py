"""The dense side of plugin indexes: BM25 first, embeddings in the background (sliced, resumable, with progress),
re-embedding on a model change, and built-in corpora kept in line with their files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from apps.core.dispatch import wait_for_embedded_tasks
from apps.embeddings.services import embedding_models_register_bundled
from apps.plugins import dense, indexes
from apps.plugins.models import Plugin
from apps.plugins.services import builtin_plugins, documents
from tests.plugins.conftest import HashEmbedder
from workers.retrieval.documents import Document as IndexDocument
from workers.retrieval.embeddings import E5Embedder
from workers.retrieval.index import HybridIndex
from workers.retrieval.profiles import get_profile

BASE = "/v1/plugin/custom/plugins"
RECORDS = [
    {"id": "labour", "title": "劳动合同法", "text": "劳动合同期限三个月以上不满一年的，试用期不得超过一个月。"},
    {"id": "ships", "title": "海商法", "text": "船舶在海上航行时应当悬挂国旗，并遵守航行规则。"},
    {"id": "tides", "title": "Tide pools", "text": "The purple sea urchin grazes kelp along the rocky shore."},
    {"id": "bread", "title": "Baking", "text": "Knead the dough, let it rise for an hour and bake the bread."},
]


def _corpus(tmp_path: Path, records: list[dict] = RECORDS, name: str = "corpus.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(record, ensure_ascii=False) for record in records), encoding="utf-8")
    return path


def _search(tenant, plugin_id: str, query: str, **body):
    response = tenant.client.post("/v1/plugin/search", {"plugin": plugin_id, "query": query, **body}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.fixture
def imported(transactional_db, tenant, plugin_indexes, tmp_path):
    """A plugin whose documents are in on the sparse side only (the dense build not run yet)."""
    plugin_id = tenant.client.post(BASE, {"name": "Mixed"}, format="json").json()["plugin_id"]
    plugin = Plugin.objects.get(pk=plugin_id)
    run, rejected = documents.documents_import(plugin=plugin, path=_corpus(tmp_path), dense_build_in_background=False)
    assert run is not None and not rejected
    return plugin


def test_searchable_by_bm25_at_once_then_hybrid_once_embedded(tenant, imported):
    body = _search(tenant, imported.pk, "sea urchin kelp")
    assert body["dense"]["status"] == "queued"
    assert body["data"][0]["doc_id"] == "tides" and all(hit["scores"]["dense"] == 0 for hit in body["data"])
    detail = tenant.client.get(f"{BASE}/{imported.pk}").json()
    assert detail["dense"]["status"] == "queued" and detail["embedding_model"] is None

    seen: list[tuple[int, int]] = []
    assert dense.dense_build(plugin_id=imported.pk, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (4, 4) and all(total == 4 for _, total in seen)

    body = _search(tenant, imported.pk, "试用期最长多久？")  # no word in common with BM25's terms but 试用期
    assert body["dense"] == {"status": "ready", "done": 4, "total": 4, "error": None}
    assert body["data"][0]["doc_id"] == "labour" and body["data"][0]["scores"]["dense"] > 0
    with indexes.searchable(plugin=Plugin.objects.get(pk=imported.pk)) as index:
        assert index.dense_ready and isinstance(index.embedder, E5Embedder)


def test_dense_build_runs_in_slices_and_resumes_after_a_failure(tenant, imported, settings, monkeypatch):
    settings.PLUGINS_EMBED_BATCH = 1
    queued: list[str] = []
    monkeypatch.setattr(dense, "enqueue", lambda task, plugin_id: queued.append(plugin_id))

    assert dense.dense_build(plugin_id=imported.pk, slice_s=0) is False  # one batch, committed, next slice queued
    plugin = Plugin.objects.get(pk=imported.pk)
    assert queued == [imported.pk]
    assert (plugin.dense_status, plugin.dense_done, plugin.dense_total) == ("building", 1, 4)
    assert len(indexes.open_index(plugin=plugin).pending_dense()) == 3

    embedded: list[str] = []
    real = E5Embedder.embed_passages

    def failing(self, *, texts):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(E5Embedder, "embed_passages", failing)
    with pytest.raises(RuntimeError):
        dense.dense_build(plugin_id=imported.pk)
    plugin.refresh_from_db()
    assert plugin.dense_status == "failed" and "worker lost" in plugin.dense_error
    assert _search(tenant, imported.pk, "bread")["data"][0]["doc_id"] == "bread"  # still searchable (BM25)

    def counting(self, *, texts):
        embedded.extend(texts)
        return real(self, texts=texts)

    monkeypatch.setattr(E5Embedder, "embed_passages", counting)
    assert dense.dense_builds_resume() == 0  # failed builds wait for the next ingest or a model change
    assert dense.dense_build(plugin_id=imported.pk) is True
    assert len(embedded) == 3  # what the first slice committed is not embedded again
    plugin.refresh_from_db()
    assert (plugin.dense_status, plugin.dense_done, plugin.dense_total, plugin.dense_error) == ("ready", 4, 4, "")


def test_a_half_done_build_is_queued_again_unless_it_is_running(imported, monkeypatch, settings):
    queued: list[str] = []
    monkeypatch.setattr(dense, "enqueue", lambda task, plugin_id: queued.append(plugin_id))
    Plugin.objects.filter(pk=imported.pk).update(dense_status=Plugin.DenseStatus.BUILDING)
    assert dense.dense_builds_resume() == 1 and queued == [imported.pk]
    import fcntl

    lock = (Path(settings.MEDIA_ROOT) / "indexes" / f"{imported.pk}.dense.lock").open("a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        assert dense.dense_builds_resume() == 0
        assert dense.dense_build(plugin_id=imported.pk) is False  # another build holds it: return at once
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def test_changing_the_embedding_model_re_embeds_in_the_background(tenant, other_tenant, imported):
    embedding_models_register_bundled()
    dense.dense_build(plugin_id=imported.pk)
    url = f"{BASE}/{imported.pk}"
    response = tenant.client.patch(url, {"embedding_model": "all-minilm-l6-v2"}, format="json")
    assert response.status_code == 200 and response.json()["embedding_model"] == "all-minilm-l6-v2"
    wait_for_embedded_tasks()
    plugin = Plugin.objects.get(pk=imported.pk)
    assert plugin.dense_status == "ready" and plugin.dense_total == 4
    meta = json.loads((indexes.index_dir(plugin_id=plugin.pk) / "meta.json").read_text())
    assert "all-MiniLM-L6-v2" in meta["embedding_model"] or "minilm" in meta["embedding_model"].lower()
    assert _search(tenant, plugin.pk, "purple urchin")["data"][0]["doc_id"] == "tides"

    for body, status, code in (({"embedding_model": "nope"}, 404, "model_not_found"), ({}, 400, None)):
        bad = tenant.client.patch(url, body, format="json")
        assert bad.status_code == status, bad.json()
        assert code is None or bad.json()["error"]["code"] == code
    assert other_tenant.client.patch(url, {"embedding_model": "all-minilm-l6-v2"}, format="json").status_code == 404
    builtin = builtin_plugins.builtin_plugin_ensure(kind="wiki")
    assert (
        tenant.client.patch(f"{BASE}/{builtin.pk}", {"embedding_model": "all-minilm-l6-v2"}, format="json").status_code
        == 404
    )


def test_reloading_a_builtin_corpus_applies_deletions(transactional_db, tenant, plugin_indexes, tmp_path):
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    _corpus(corpora, RECORDS, name="wiki.jsonl")
    assert builtin_plugins.builtins_load(corpora_dir=corpora, only=["wiki"]) == {"wiki": 4}
    assert builtin_plugins.builtins_missing(only=["wiki"]) == []
    assert _search(tenant, "wiki", "knead the dough")["data"][0]["doc_id"] == "bread"

    _corpus(corpora, [r for r in RECORDS if r["id"] != "bread"], name="wiki.jsonl")
    assert builtin_plugins.builtins_load(corpora_dir=corpora, only=["wiki"]) == {"wiki": 0}
    plugin = Plugin.objects.get(slug="wiki", owner__isnull=True)
    assert sorted(plugin.documents.values_list("external_id", flat=True)) == ["labour", "ships", "tides"]
    assert "bread" not in {hit["doc_id"] for hit in _search(tenant, "wiki", "knead the dough")["data"]}
    assert plugin.dense_status == "ready"


def test_index_pending_chunks_are_bm25_only_until_given_vectors(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    index = HybridIndex(directory=tmp_path / "idx", profile=get_profile(kind="generic"), embedder=embedder)
    documents = [IndexDocument(id=r["id"], title=r["title"], text=r["text"]) for r in RECORDS]
    index.add_documents(documents=documents, embed=False)
    assert not index.dense_ready and len(index.pending_dense()) == 4
    hits = index.search(query="urchin", top_k=2, tfidf_weight=1.0, embedding_weight=1.0)
    assert hits[0].doc_id == "tides" and hits[0].scores["dense"] == 0
    assert index.search(query="urchin", top_k=1, tfidf_weight=0.0, embedding_weight=1.0)[0].doc_id == "tides"

    index.save()
    reloaded = HybridIndex.load(directory=tmp_path / "idx", embedder=embedder)
    pending = reloaded.pending_dense()
    assert [text for _, text in pending] == [text for _, text in index.pending_dense()]
    ids = [chunk_id for chunk_id, _ in pending]
    taken = reloaded.add_vectors(
        ids=[*ids, 10_000], vectors=embedder.embed_passages(texts=[*(text for _, text in pending), "stale"])
    )
    assert taken == 4 and reloaded.dense_ready
    hits = reloaded.search(query="urchin", top_k=1, tfidf_weight=1.0, embedding_weight=1.0)
    assert hits[0].doc_id == "tides" and hits[0].scores["dense"] > 0
    assert np.isclose(hits[0].scores["dense"], 1.0)
