"""Rethink chat with earlier turns: the follow-up is made standalone, its key terms are what is searched, and a
streamed answer arrives token by token. The rewriting model's reply is scripted here (the tiny test model cannot
rewrite); ``test_rethink_smollm2.py`` does the same with the real default model."""

from __future__ import annotations

import itertools
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.dispatch import wait_for_embedded_tasks
from apps.plugins import rethink
from apps.search import rewrite
from workers.errors import InvalidRequest
from workers.runtime.specs import ChatMessage, GenerationResult

BASE = "/v1/plugin/custom/plugins"
AUTHOR_CORPUS = [
    {
        "id": "novel",
        "title": "The Lighthouse at Karsk",
        "text": "The Lighthouse at Karsk is a novel by Marguerite Vallon, published in 1904. It follows a keeper's "
        "daughter through one winter on a northern island.",
    },
    {
        "id": "vallon",
        "title": "Marguerite Vallon",
        "text": "Marguerite Vallon was a French novelist. She was born on 3 March 1871 in Lyon and died in Paris in "
        "1939.",
    },
    {
        "id": "dahl",
        "title": "Henrik Dahl",
        "text": "Henrik Dahl was a Norwegian painter. He was born on 12 June 1902 in Bergen.",
    },
    {
        "id": "lind",
        "title": "Oskar Lind",
        "text": "Oskar Lind was a Swedish composer. He was born in 1880 in Uppsala, where he was also buried.",
    },
]
FIRST_QUESTION = "Who wrote the novel The Lighthouse at Karsk?"
FIRST_ANSWER = "The Lighthouse at Karsk was written by Marguerite Vallon."
FOLLOW_UP = "When was she born?"
SESSION = [{"human": FIRST_QUESTION, "assistant": FIRST_ANSWER}]


def author_plugin(tenant) -> str:
    plugin_id = tenant.client.post(BASE, {"name": "Authors"}, format="json").json()["plugin_id"]
    corpus = SimpleUploadedFile("authors.jsonl", "\n".join(json.dumps(r) for r in AUTHOR_CORPUS).encode())
    response = tenant.client.post(f"{BASE}/{plugin_id}/files", {"file": [corpus]}, format="multipart")
    assert response.status_code == 202, response.content
    wait_for_embedded_tasks()
    return plugin_id


def sse_events(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return [json.loads(line[len("data: ") :]) for line in text.split("\n\n") if line.startswith("data: ")]


@pytest.fixture
def scripted_rewrite(monkeypatch):
    """The rewriting call answers with ``reply`` (set by the test); the other calls go to the real model."""
    calls: list[list[ChatMessage]] = []

    class Script:
        reply = "When was Marguerite Vallon born?"
        finish_reason = "stop"

    def fake(*, request):
        calls.append(list(request.messages))
        return GenerationResult(
            text=Script.reply, prompt_tokens=100, completion_tokens=9, finish_reason=Script.finish_reason
        )

    monkeypatch.setattr(rewrite, "chat_complete", fake)
    Script.calls = calls
    return Script


def _chat(tenant, plugin_id, **body):
    return tenant.client.post(
        "/v1/plugin/chat",
        {"plugin": plugin_id, "temperature": 0, "search_result_num": 2, "show_search_result": True, **body},
        format="json",
    )


def test_follow_up_is_rewritten_and_its_key_terms_searched(
    transactional_db, tenant, chatty_endpoint, plugin_indexes, scripted_rewrite
):
    plugin_id = author_plugin(tenant)
    body = _chat(tenant, plugin_id, query=FOLLOW_UP, session=SESSION).json()
    steps = body["steps"]
    assert [s["action"] for s in steps] == ["rewrite query", "extract key terms", "search authors", "rethink"]
    assert steps[0] == {"action": "rewrite query", "method": "model", "observation": "When was Marguerite Vallon born?"}
    assert steps[1]["observation"] == "Marguerite, Vallon, born"
    assert steps[2]["query"] == "Marguerite Vallon born"  # the exact search query, as run
    assert body["search_result"][0]["doc_id"] == "vallon"
    # The model saw the conversation, the follow-up last.
    shown = scripted_rewrite.calls[0][-1].content
    assert FIRST_ANSWER in shown and shown.endswith(f"Follow-up: {FOLLOW_UP}")

    plain = _chat(tenant, plugin_id, query=FOLLOW_UP).json()
    assert [s["action"] for s in plain["steps"]] == ["extract key terms", "search authors", "rethink"]
    assert plain["steps"][1]["query"] == "she born"
    assert len(scripted_rewrite.calls) == 1  # no earlier turns: no rewriting call


@pytest.mark.parametrize(
    ("reply", "finish_reason"),
    [
        ("", "stop"),  # nothing
        ("She was born in 1871 in Lyon, France.", "stop"),  # an answer, not a question
        ("When was she born?", "stop"),  # the pronoun left as it was
        ("Who wrote The Lighthouse at Karsk?", "stop"),  # another question
        ("When was Marguerite Vallon born and " + "what " * 40, "length"),  # a run-on
    ],
)
def test_a_bad_rewrite_falls_back_to_the_follow_up_and_the_previous_turn(
    transactional_db, tenant, chatty_endpoint, plugin_indexes, scripted_rewrite, reply, finish_reason
):
    plugin_id = author_plugin(tenant)
    scripted_rewrite.reply, scripted_rewrite.finish_reason = reply, finish_reason
    response = _chat(tenant, plugin_id, query=FOLLOW_UP, session=SESSION)
    assert response.status_code == 200, response.content
    step = response.json()["steps"][0]
    assert step == {"action": "rewrite query", "method": "fallback", "observation": f"{FOLLOW_UP} {FIRST_QUESTION}"}


def test_rewrite_checks():
    history = [ChatMessage(role="user", content=FIRST_QUESTION), ChatMessage(role="assistant", content=FIRST_ANSWER)]

    def rejection(text: str, question: str = FOLLOW_UP) -> str:
        return rewrite.rewrite_rejection(rewrite=text, question=question, history=history, truncated=False)

    assert rejection("When was Marguerite Vallon born?") == ""
    assert rejection("What else did Vallon write?", question="What else did she write?") == ""
    assert rejection("Tell me more about Marguerite Vallon.", question="Tell me more about her.") == ""
    assert rejection("How many novels did Vallon write?", question="How many novels did she write?") == ""
    assert rejection("What is the capital of France?", question="What is the capital of France?") == ""
    assert rejection("") == "empty"
    assert rejection("x" * 200 + "?") == "overlong"
    assert rejection("She was born in 1871.") == "not a question"
    assert rejection("When was she born?") == "reference left unresolved"
    assert rejection("Where did Marguerite Vallon live?") == "lost the question's terms"
    assert rewrite._cleaned('Standalone question: "When was Vallon born? She was born in 1871."') == (
        "When was Vallon born?"
    )


def test_streamed_answer_arrives_as_deltas(transactional_db, tenant, chatty_endpoint, plugin_indexes):
    plugin_id = author_plugin(tenant)
    events = sse_events(_chat(tenant, plugin_id, query="Marguerite Vallon", stream=True))
    deltas = [e["delta"] for e in events if "delta" in e]
    final = events[-1]
    assert final["finished"] is True and final["result"]
    assert len(deltas) >= 3 and "".join(deltas) == final["result"]
    kinds = ["delta" if "delta" in e else e["step"]["action"] for e in events[:-1]]
    assert kinds[:2] == ["extract key terms", "search authors"] and kinds[-1] == "rethink"
    assert set(kinds[2:-1]) == {"delta"}  # the steps, then the answer's tokens, then its step
    assert all(e["finished"] is False for e in events[:-1])
    assert final["steps"][-1]["observation"] == final["result"]

    not_streamed = _chat(tenant, plugin_id, query="Marguerite Vallon").json()
    assert not_streamed["result"] == final["result"]  # greedy: the same answer either way


def test_a_prompt_too_long_shrinks_before_the_first_delta(
    transactional_db, tenant, chatty_endpoint, plugin_indexes, monkeypatch
):
    plugin_id = author_plugin(tenant)
    opened: list[str] = []
    real = rethink.chat_stream

    def too_long_at_first(*, request):
        opened.append(request.messages[-1].content)
        if len(opened) == 1:
            raise InvalidRequest("The prompt is too long.", code="context_length_exceeded", param="messages")
        return real(request=request)

    monkeypatch.setattr(rethink, "chat_stream", too_long_at_first)
    events = sse_events(_chat(tenant, plugin_id, query="Marguerite Vallon", stream=True))
    # Each try cut the passages to the next budget (this tiny model reads only 256 tokens, so the real model
    # refuses some of the larger ones too) until one fitted; only then did deltas start.
    assert len(opened) >= 2 and all(len(a) >= len(b) for a, b in itertools.pairwise(opened))
    assert len(opened[-1]) < len(opened[0])
    deltas = [e["delta"] for e in events if "delta" in e]
    assert deltas and "".join(deltas) == events[-1]["result"]
    assert "error" not in events[-1]


@pytest.mark.parametrize("pieces", [[" ", " Hel", "lo ", " ", "world", "  \n"], ["", "a"], ["  "]])
def test_streamed_deltas_strip_like_the_whole_answer(pieces):
    assert "".join(rethink._stripped(iter(pieces))) == "".join(pieces).strip()
