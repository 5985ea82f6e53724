"""Segments: a document's chunks listed, edited, disabled and enabled through the API and the admin (the index
follows at once, and keeps them across a reload and a reindex), chunking previews, and the index-level operations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.dispatch import wait_for_embedded_tasks
from apps.plugins import indexes, selectors
from apps.plugins.models import Chunk, Document, Plugin
from apps.plugins.services import documents, ingestion
from tests.plugins.conftest import HashEmbedder
from workers.retrieval.catalog import ChunkOverride
from workers.retrieval.documents import Document as IndexDocument
from workers.retrieval.index import HybridIndex
from workers.retrieval.profiles import get_profile

BASE = "/v1/plugin/custom/plugins"
GARDEN = (
    "# Garden\n\n## Tomatoes\n\nTomatoes need full sun and regular watering.\n\n"
    "## Basil\n\nBasil grows well beside tomatoes.\n\n## Compost\n\nCompost returns kitchen scraps to the soil.\n"
)
CORPUS = [
    {"id": "inventory", "title": "Inventory", "text": "Inventory list: bicycle, tire, lamp, chair, table, rug."},
    {
        "id": "repair",
        "title": "Workshop notes",
        "text": "Repairing a punctured bike wheel: remove the inner tube, patch the hole, then pump it up again.",
    },
    {"id": "baking", "title": "Baking", "text": "Knead the dough, let it rise for an hour and bake the bread."},
]
NEW_TEXT = "Clean the aquarium filter every week and feed the goldfish twice a day."


# --- The index ------------------------------------------------------------------------------------------


def _index(directory: Path, *, embed: bool = True) -> HybridIndex:
    index = HybridIndex(directory=directory, profile=get_profile(kind="generic"), embedder=HashEmbedder())
    documents = [IndexDocument(id=r["id"], title=r["title"], text=r["text"]) for r in CORPUS]
    index.add_documents(documents=[*documents, IndexDocument(id="garden", title="Garden", text=GARDEN)], embed=embed)
    return index


def _found(index: HybridIndex, query: str, **weights: float) -> list[tuple[str, int, str]]:
    return [(hit.doc_id, hit.ordinal, hit.text) for hit in index.search(query=query, top_k=20, **weights)]


def test_index_edit_disable_enable_survive_save_and_load(tmp_path: Path) -> None:
    index = _index(tmp_path / "index")
    assert index.dense_ready

    assert index.edit_chunk(external_id="baking", ordinal=0, text=NEW_TEXT)
    assert not index.edit_chunk(external_id="baking", ordinal=0, text=NEW_TEXT)
    assert index.dense_ready  # embedded at once
    for weights in ({"embedding_weight": 0}, {"tfidf_weight": 0}, {}):
        assert _found(index, "aquarium goldfish", **weights)[0] == ("baking", 0, NEW_TEXT)
    assert not [hit for hit in _found(index, "knead the dough bread") if "Knead" in hit[2]]
    assert not _found(index, "knead dough", embedding_weight=0)

    assert index.set_chunk_enabled(external_id="garden", ordinal=1, enabled=False)
    assert not index.set_chunk_enabled(external_id="garden", ordinal=1, enabled=False)
    for weights in ({"embedding_weight": 0}, {"tfidf_weight": 0}):
        assert ("garden", 1) not in [hit[:2] for hit in _found(index, "basil", **weights)]
    # A disabled chunk may be edited: the text waits for it to be enabled.
    assert index.edit_chunk(external_id="garden", ordinal=1, text="Basil and parsley share a pot.")

    states = {name: index.document_chunks(external_id=name) for name in ("baking", "garden")}
    assert [(s.ordinal, s.enabled, s.edited) for s in states["garden"]] == [
        (0, True, False),
        (1, False, True),
        (2, True, False),
    ]
    index.save()
    rows = {
        json.loads(line)["id"]: json.loads(line)
        for line in (tmp_path / "index" / "documents.jsonl").read_text(encoding="utf-8").splitlines()
    }
    assert "disabled" not in rows["inventory"] and all(len(c) <= 5 for c in rows["inventory"]["chunks"])

    reloaded = HybridIndex.load(directory=tmp_path / "index", embedder=HashEmbedder())
    assert {name: reloaded.document_chunks(external_id=name) for name in states} == states
    assert _found(reloaded, "aquarium goldfish")[0] == ("baking", 0, NEW_TEXT)
    assert ("garden", 1) not in [hit[:2] for hit in _found(reloaded, "parsley basil")]
    assert reloaded.set_chunk_enabled(external_id="garden", ordinal=1, enabled=True)
    for weights in ({"embedding_weight": 0}, {"tfidf_weight": 0}):
        assert _found(reloaded, "parsley pot", **weights)[0] == ("garden", 1, "Basil and parsley share a pot.")
    # Editing back to the document's own span is no longer an edit.
    assert reloaded.edit_chunk(external_id="baking", ordinal=0, text=CORPUS[2]["text"])
    assert not reloaded.document_chunks(external_id="baking")[0].edited
    with pytest.raises(KeyError):
        reloaded.edit_chunk(external_id="baking", ordinal=7, text="x")
    with pytest.raises(KeyError):
        reloaded.set_chunk_enabled(external_id="nope", ordinal=0, enabled=False)


def test_index_edit_while_the_dense_side_is_pending(tmp_path: Path) -> None:
    index = _index(tmp_path / "index", embed=False)
    stale = dict(index.pending_dense())
    assert index.edit_chunk(external_id="baking", ordinal=0, text=NEW_TEXT)
    pending = dict(index.pending_dense())
    assert NEW_TEXT in next(text for text in pending.values() if "goldfish" in text)
    assert len(pending) == len(stale)
    # A background build that embedded the old text: its vector for the replaced chunk is not taken.
    ids = sorted(stale)
    assert index.add_vectors(ids=ids, vectors=HashEmbedder().embed_passages(texts=[stale[i] for i in ids])) == 5
    assert not index.dense_ready
    last = [(chunk_id, text) for chunk_id, text in index.pending_dense()]
    index.add_vectors(ids=[last[0][0]], vectors=HashEmbedder().embed_passages(texts=[last[0][1]]))
    assert index.dense_ready
    assert _found(index, "aquarium goldfish", tfidf_weight=0)[0] == ("baking", 0, NEW_TEXT)


def test_index_rebuilt_with_overrides(tmp_path: Path) -> None:
    edited = _index(tmp_path / "a")
    edited.edit_chunk(external_id="garden", ordinal=0, text="Tomatoes like warm nights.")
    edited.set_chunk_enabled(external_id="garden", ordinal=2, enabled=False)
    rebuilt = HybridIndex(directory=tmp_path / "b", profile=get_profile(kind="generic"), embedder=HashEmbedder())
    rebuilt.add_documents(
        documents=[IndexDocument(id="garden", title="Garden", text=GARDEN)],
        overrides={"garden": {0: ChunkOverride(text="Tomatoes like warm nights."), 2: ChunkOverride(enabled=False)}},
    )
    assert rebuilt.document_chunks(external_id="garden") == edited.document_chunks(external_id="garden")
    assert len(rebuilt) == 2
    assert [(h.ordinal, h.text) for h in rebuilt.search(query="warm nights compost", top_k=5)] == [
        (h.ordinal, h.text) for h in edited.search(query="warm nights compost", top_k=5, allowed_ids={"garden"})
    ]
    assert "Compost" not in " ".join(h.text for h in rebuilt.search(query="compost", top_k=5))


# --- The API --------------------------------------------------------------------------------------------


def _plugin_with(tenant, *files: SimpleUploadedFile, name: str = "Notes") -> str:
    plugin_id = tenant.client.post(BASE, {"name": name}, format="json").json()["plugin_id"]
    response = tenant.client.post(f"{BASE}/{plugin_id}/files", {"file": list(files)}, format="multipart")
    assert response.status_code == 202, response.content
    wait_for_embedded_tasks()
    return plugin_id


def _corpus_file() -> SimpleUploadedFile:
    return SimpleUploadedFile("corpus.jsonl", "\n".join(json.dumps(r) for r in CORPUS).encode())


def _file_id(plugin_id: str, external_id: str) -> str:
    return Document.objects.get(plugin_id=plugin_id, external_id=external_id).pk


def _segments(tenant, plugin_id: str, file_id: str, query: str = "") -> dict:
    response = tenant.client.get(f"{BASE}/{plugin_id}/files/{file_id}/segments{query}")
    assert response.status_code == 200, response.content
    return response.json()


def _patch(tenant, plugin_id: str, file_id: str, segment_id: str, body: object):
    return tenant.client.patch(f"{BASE}/{plugin_id}/files/{file_id}/segments/{segment_id}", body, format="json")


def _hits(tenant, plugin_id: str, query: str, **body) -> list[dict]:
    response = tenant.client.post(
        "/v1/plugin/search", {"plugin": plugin_id, "query": query, "top_k": 10, **body}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_edit_disable_enable_through_the_api(transactional_db, tenant, plugin_indexes):
    plugin_id = _plugin_with(tenant, _corpus_file(), SimpleUploadedFile("garden.md", GARDEN.encode()))
    plugin = Plugin.objects.get(pk=plugin_id)
    assert plugin.dense_status == Plugin.DenseStatus.READY

    garden = _file_id(plugin_id, "garden.md")
    page = _segments(tenant, plugin_id, garden, "?limit=2")
    assert [s["ordinal"] for s in page["data"]] == [0, 1] and page["has_more"] is True
    assert page["data"][0] == {
        "segment_id": page["first_id"],
        "file_id": garden,
        "ordinal": 0,
        "text": "Tomatoes need full sun and regular watering.",
        "start": 23,
        "end": 67,
        "enabled": True,
        "edited": False,
        "char_count": 44,
    }
    rest = _segments(tenant, plugin_id, garden, f"?after={page['last_id']}")
    assert [s["ordinal"] for s in rest["data"]] == [2] and rest["has_more"] is False

    baking = _file_id(plugin_id, "baking")
    segment = _segments(tenant, plugin_id, baking)["data"][0]
    edited = _patch(tenant, plugin_id, baking, segment["segment_id"], {"text": NEW_TEXT})
    assert edited.status_code == 200, edited.content
    assert edited.json() == {**segment, "text": NEW_TEXT, "edited": True, "char_count": len(NEW_TEXT)}
    assert indexes.open_index(plugin=plugin).dense_ready  # re-embedded at once, not left to a build

    def edit_found() -> None:
        for weights in ({}, {"embedding_weight": 0}, {"tfidf_weight": 0}):
            hits = _hits(tenant, plugin_id, "aquarium goldfish", **weights)
            assert (hits[0]["doc_id"], hits[0]["text"]) == ("baking", NEW_TEXT), weights
            if weights == {"tfidf_weight": 0}:  # ranked by the new vector, not by BM25 standing in for it
                assert hits[0]["scores"]["sparse"] == 0 and hits[0]["scores"]["dense"] > 0
        assert not [h for h in _hits(tenant, plugin_id, "knead the dough, bake the bread") if "Knead" in h["text"]]
        assert _hits(tenant, plugin_id, "knead dough", embedding_weight=0) == []

    edit_found()

    repair = _file_id(plugin_id, "repair")
    repair_segment = _segments(tenant, plugin_id, repair)["data"][0]["segment_id"]
    disabled = _patch(tenant, plugin_id, repair, repair_segment, {"enabled": False})
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert Chunk.objects.get(pk=repair_segment).text.startswith("Repairing")  # kept

    def repair_gone() -> None:
        for weights in ({}, {"tfidf_weight": 0}):
            assert "repair" not in [h["doc_id"] for h in _hits(tenant, plugin_id, "punctured bike wheel", **weights)]

    repair_gone()

    # A fresh process (the index from disk), then a rebuild from the rows: edits and disabled segments stay.
    indexes.forget()
    edit_found()
    repair_gone()
    ingestion.plugin_reindex(plugin=Plugin.objects.get(pk=plugin_id))
    assert _hits(tenant, plugin_id, "aquarium goldfish", embedding_weight=0)[0]["text"] == NEW_TEXT
    wait_for_embedded_tasks()  # the rebuilt dense side
    assert Plugin.objects.get(pk=plugin_id).dense_status == Plugin.DenseStatus.READY
    edit_found()
    repair_gone()

    enabled = _patch(tenant, plugin_id, repair, repair_segment, {"enabled": True})
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    for weights in ({}, {"embedding_weight": 0}, {"tfidf_weight": 0}):
        assert _hits(tenant, plugin_id, "punctured bike wheel", **weights)[0]["doc_id"] == "repair"

    # Text and enabled together; the listing shows the state.
    both = _patch(
        tenant,
        plugin_id,
        garden,
        page["data"][1]["segment_id"],
        {"text": "Basil and parsley share a pot.", "enabled": False},
    )
    assert both.status_code == 200 and (both.json()["enabled"], both.json()["edited"]) == (False, True)
    assert not [h for h in _hits(tenant, plugin_id, "parsley basil") if "asil" in h["text"]]
    listed = _segments(tenant, plugin_id, garden)["data"]
    assert [(s["enabled"], s["edited"]) for s in listed] == [(True, False), (False, True), (True, False)]


def test_segments_tenancy_and_bad_input(transactional_db, tenant, other_tenant, plugin_indexes):
    plugin_id = _plugin_with(tenant, _corpus_file())
    other_plugin = _plugin_with(other_tenant, SimpleUploadedFile("garden.md", GARDEN.encode()), name="Other")
    baking, repair = _file_id(plugin_id, "baking"), _file_id(plugin_id, "repair")
    segment = _segments(tenant, plugin_id, baking)["data"][0]["segment_id"]
    repair_segment = _segments(tenant, plugin_id, repair)["data"][0]["segment_id"]
    other_file = _file_id(other_plugin, "garden.md")
    other_segment = str(Chunk.objects.filter(document_id=other_file).first().pk)

    def not_found(response) -> None:
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "not_found"

    for client, plugin, file_id, segment_id in [
        (other_tenant.client, plugin_id, baking, segment),  # another tenant's plugin
        (tenant.client, plugin_id, other_file, other_segment),  # another tenant's file under my plugin
        (tenant.client, other_plugin, other_file, other_segment),  # another tenant's everything
        (tenant.client, plugin_id, baking, repair_segment),  # my segment, but of another file
        (tenant.client, plugin_id, baking, other_segment),  # another tenant's segment under my file
        (tenant.client, plugin_id, baking, "seg-1"),
        (tenant.client, plugin_id, baking, "9" * 40),
    ]:
        url = f"{BASE}/{plugin}/files/{file_id}/segments"
        if (client, plugin, file_id) != (tenant.client, plugin_id, baking):
            not_found(client.get(url))
        not_found(client.get(f"{url}/{segment_id}"))
        not_found(client.patch(f"{url}/{segment_id}", {"enabled": False}, format="json"))
    not_found(other_tenant.client.post(f"{BASE}/{plugin_id}/segments/preview", {"text": "x"}, format="json"))
    assert Chunk.objects.filter(enabled=False).count() == 0
    assert Chunk.objects.get(pk=other_segment).text == "Tomatoes need full sun and regular watering."

    for body, param, code in [
        ({}, "text", "invalid_request"),
        ({"text": ""}, "text", "invalid_request"),
        ({"text": "  \n "}, "text", "invalid_request"),
        ({"text": "x" * 20_000}, "text", "segment_too_long"),
        ({"text": "word " * 600}, "text", "segment_too_long"),
        ({"text": "a\x00b"}, "text", "null_characters_not_allowed"),
        ({"text": None}, "text", "invalid_request"),
        ({"text": ["a"]}, "text", "invalid_request"),
        ({"enabled": "maybe"}, "enabled", "invalid_request"),
        ({"enabled": None}, "enabled", "invalid_request"),
        ({"text": "new", "enable": False}, "enable", "invalid_request"),  # unknown: not silently left enabled
        (["text"], None, "invalid_request"),
    ]:
        response = _patch(tenant, plugin_id, baking, segment, body)
        assert response.status_code == 400, (body, response.content)
        error = response.json()["error"]
        assert (error["param"], error["code"]) == (param, code), body
    for query, param in (
        ("?limit=0", "limit"),
        ("?after=123456789", "after"),
        (f"?after={repair_segment}", "after"),
        ("?after=x", "after"),
    ):
        response = tenant.client.get(f"{BASE}/{plugin_id}/files/{baking}/segments{query}")
        assert response.status_code == 400 and response.json()["error"]["param"] == param, query
    assert Chunk.objects.get(pk=segment).text == CORPUS[2]["text"] and not Chunk.objects.filter(edited=True).exists()

    # A file not processed (queued again) cannot be changed.
    Document.objects.filter(pk=baking).update(status=Document.Status.QUEUED)
    conflict = _patch(tenant, plugin_id, baking, segment, {"text": "new"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "file_not_processed"


def test_preview_stores_nothing(transactional_db, tenant, other_tenant, settings, plugin_indexes):
    plugin_id = tenant.client.post(BASE, {"name": "Empty"}, format="json").json()["plugin_id"]
    url = f"{BASE}/{plugin_id}/segments/preview"
    response = tenant.client.post(url, {"text": GARDEN, "title": "Garden"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "list" and body["truncated"] is False
    (document,) = body["data"]
    assert document["chunk_count"] == 3 and [c["ordinal"] for c in document["chunks"]] == [0, 1, 2]
    for chunk in document["chunks"]:
        assert GARDEN[chunk["start"] : chunk["end"]] == chunk["text"] and chunk["char_count"] == len(chunk["text"])

    as_file = tenant.client.post(
        url, {"file": [SimpleUploadedFile("garden.md", GARDEN.encode())]}, format="multipart"
    ).json()
    assert as_file["data"][0]["chunks"] == document["chunks"]
    assert as_file["data"][0]["external_id"] == "garden.md" and as_file["data"][0]["title"] == "Garden"
    jsonl = tenant.client.post(url, {"file": [_corpus_file()]}, format="multipart").json()
    assert [d["external_id"] for d in jsonl["data"]] == ["inventory", "repair", "baking"]

    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert not indexes.index_dir(plugin_id=plugin_id).exists()
    assert Plugin.objects.get(pk=plugin_id).index_version == 0

    settings.PLUGINS_MAX_UPLOAD_BYTES = 2048
    for request, status, param, code in [
        ({"data": {}, "format": "json"}, 400, "text", "invalid_request"),
        ({"data": {"text": ""}, "format": "json"}, 400, "text", "invalid_request"),
        ({"data": {"text": "  "}, "format": "json"}, 400, "text", "invalid_request"),
        ({"data": {"text": 7}, "format": "json"}, 400, "text", "invalid_request"),
        ({"data": {"text": "x", "title": ["t"]}, "format": "json"}, 400, "title", "invalid_request"),
        ({"data": ["x"], "format": "json"}, 400, "text", "invalid_request"),
        ({"data": {"text": "x" * 3000}, "format": "json"}, 413, "text", "file_too_large"),
        ({"data": {"text": "x", "titel": "t"}, "format": "json"}, 400, "titel", "invalid_request"),
        (
            {"data": {"file": [SimpleUploadedFile("a.md", GARDEN.encode())], "kind": "law"}, "format": "multipart"},
            400,
            "kind",
            "invalid_request",
        ),
        (
            {"data": {"file": [SimpleUploadedFile("a.md", GARDEN.encode())], "text": "x"}, "format": "multipart"},
            400,
            "file",
            "invalid_request",
        ),
        (
            {"data": {"file": [SimpleUploadedFile("b.png", b"\x89PNG\x00")]}, "format": "multipart"},
            400,
            "file",
            "unsupported_file_type",
        ),
        ({"data": {"file": [SimpleUploadedFile("c.md", b"")]}, "format": "multipart"}, 400, "file", "empty_file"),
        (
            {"data": {"file": [SimpleUploadedFile("d.md", b"x" * 3000)]}, "format": "multipart"},
            413,
            "file",
            "file_too_large",
        ),
    ]:
        response = tenant.client.post(url, **request)
        assert response.status_code == status, (request, response.content)
        error = response.json()["error"]
        assert (error["param"], error["code"]) == (param, code), request
    assert not Document.objects.exists() and not indexes.index_dir(plugin_id=plugin_id).exists()


def test_admin_edits_and_actions_go_through_the_index(admin_client, tmp_path, plugin_indexes):
    plugin = Plugin.objects.create(owner=None, builtin=True, slug="wiki", name="Wiki", kind="wiki")
    (tmp_path / "garden.md").write_text(GARDEN, encoding="utf-8")
    documents.documents_import(plugin=plugin, path=tmp_path)
    tomatoes, basil, compost = Chunk.objects.order_by("ordinal")

    def found(query: str) -> list[str]:
        hits = selectors.plugin_search_in(
            plugin=Plugin.objects.get(pk=plugin.pk), query=query, top_k=5, embedding_weight=0
        )
        return [hit["text"] for hit in hits]

    document_page = admin_client.get(f"/admin/plugins/document/{tomatoes.document_id}/change/")
    assert document_page.status_code == 200 and b"Basil grows well" in document_page.content
    listing = admin_client.get("/admin/plugins/chunk/", {"q": "basil"})
    assert listing.status_code == 200 and b"Basil grows well" in listing.content
    assert b"Tomatoes need full sun" not in listing.content

    url = f"/admin/plugins/chunk/{tomatoes.pk}/change/"
    assert admin_client.get(url).status_code == 200
    saved = admin_client.post(url, {"text": "Tomatoes like\r\nwarm nights.", "enabled": "on"})
    assert saved.status_code == 302, saved.content
    tomatoes.refresh_from_db()
    assert (tomatoes.text, tomatoes.edited) == ("Tomatoes like\nwarm nights.", True)
    assert found("warm nights") == ["Tomatoes like\nwarm nights."] and found("full sun watering") == []
    rejected = admin_client.post(url, {"text": "   ", "enabled": "on"})
    assert rejected.status_code == 200 and b"errorlist" in rejected.content
    too_long = admin_client.post(url, {"text": "word " * 600, "enabled": "on"})
    assert too_long.status_code == 200 and b"too long" in too_long.content
    assert Chunk.objects.get(pk=tomatoes.pk).text == "Tomatoes like\nwarm nights."

    disabled = admin_client.post(
        "/admin/plugins/chunk/", {"action": "disable_segments", "_selected_action": [basil.pk, compost.pk]}
    )
    assert disabled.status_code == 302
    assert not Chunk.objects.filter(pk__in=[basil.pk, compost.pk], enabled=True).exists()
    assert found("basil") == [] and found("compost kitchen scraps") == []
    admin_client.post("/admin/plugins/chunk/", {"action": "enable_segments", "_selected_action": [basil.pk]})
    assert found("basil") == ["Basil grows well beside tomatoes."] and found("compost kitchen scraps") == []
    assert Chunk.objects.get(pk=basil.pk).enabled and not Chunk.objects.get(pk=compost.pk).enabled


def test_preview_of_a_pdf(tenant, crazyones_pdf):
    plugin_id = tenant.client.post(BASE, {"name": "Pdfs"}, format="json").json()["plugin_id"]
    url = f"{BASE}/{plugin_id}/segments/preview"
    response = tenant.client.post(url, {"file": [SimpleUploadedFile("crazy.pdf", crazyones_pdf)]}, format="multipart")
    assert response.status_code == 200, response.content
    (document,) = response.json()["data"]
    assert document["external_id"] == "crazy.pdf" and "The rebels" in document["chunks"][0]["text"]
    broken = tenant.client.post(
        url, {"file": [SimpleUploadedFile("broken.pdf", b"%PDF-1.4\n" + b"\x00junk" * 50)]}, format="multipart"
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "pdf_extraction_failed"
    assert not Document.objects.exists()
