"""OpenAI's legacy ``POST /v1/completions`` (prompt in, text out) on real tiny models, through the HTTP API and
the `openai` SDK."""

from __future__ import annotations

import json

import openai
import pytest

from apps.chat.models import ModelEndpoint
from apps.usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def noise(db, tiny_models) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="noise", family="hf-template", path=str(tiny_models["hf-template"]), max_new_tokens=32, max_input_tokens=64
    )


def _complete(client, **body):
    payload = {"model": "noise", "prompt": "Once upon a time", "temperature": 0, **body}
    return client.post("/v1/completions", payload, format="json")


def _sse(response) -> list:
    body = b"".join(response.streaming_content).decode()
    events = [line[len("data: ") :] for line in body.split("\n\n") if line.startswith("data: ")]
    return [event if event == "[DONE]" else json.loads(event) for event in events]


def test_text_in_text_out_with_openais_defaults(tenant, noise):
    body = _complete(tenant.client).json()
    assert body["object"] == "text_completion" and body["model"] == "noise"
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["logprobs"] is None and choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 16  # max_tokens defaults to 16, as in OpenAI's API
    assert UsageRecord.objects.get().route == "/v1/completions"


def test_token_prompts_equal_text_prompts(tenant, noise, tiny_models):
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(tiny_models["hf-template"]).encode("Once upon a time")
    by_text = _complete(tenant.client, max_tokens=8).json()
    by_ids = _complete(tenant.client, prompt=ids, max_tokens=8).json()
    assert by_ids["choices"][0]["text"] == by_text["choices"][0]["text"]
    assert by_ids["usage"]["prompt_tokens"] == by_text["usage"]["prompt_tokens"] == len(ids)


def test_prompts_times_n_choices_in_order_with_echo_and_logprobs(tenant, noise):
    body = _complete(
        tenant.client, prompt=["Once upon a time", "The end"], n=2, max_tokens=4, echo=True, logprobs=2
    ).json()
    choices = body["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2, 3]
    assert choices[0]["text"].startswith("Once upon a time") and choices[2]["text"].startswith("The end")
    assert choices[0]["text"] == choices[1]["text"]  # greedy: both choices of a prompt agree
    logprobs = choices[2]["logprobs"]
    assert len(logprobs["tokens"]) == len(logprobs["token_logprobs"]) == len(logprobs["top_logprobs"]) == 4
    assert logprobs["text_offset"][0] == len("The end")
    assert all(len(top) <= 2 for top in logprobs["top_logprobs"])
    assert body["usage"]["completion_tokens"] == 16


def test_streaming(tenant, noise):
    whole = _complete(tenant.client, max_tokens=6).json()["choices"][0]["text"]
    events = _sse(_complete(tenant.client, max_tokens=6, stream=True, stream_options={"include_usage": True}))
    assert events[-1] == "[DONE]"
    assert "".join(c["text"] for e in events[:-1] for c in e["choices"]) == whole
    assert events[-2]["usage"]["completion_tokens"] == 6
    assert events[-3]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": [[]]}, "prompt"),
        ({"prompt": [1, "a"]}, "prompt"),
        ({"prompt": [-1, 2]}, "prompt"),
        ({"prompt": [10**9]}, "prompt"),
        ({"prompt": "word " * 200}, "prompt"),
        ({"prompt": [1, 2], "echo": True}, "echo"),
        ({"suffix": "x"}, "suffix"),
        ({"best_of": 3}, "best_of"),
        ({"n": 9}, "n"),
        ({"logprobs": 6}, "logprobs"),
        ({"max_tokens": 33}, "max_tokens"),
        ({"model": "nope"}, "model"),
        ({"frobnicate": 1}, "frobnicate"),
    ],
)
def test_bad_input_is_400_naming_the_field(tenant, noise, body, param):
    response = _complete(tenant.client, **body)
    assert response.status_code in (400, 404), response.json()
    assert response.json()["error"]["param"] == param


def test_token_ids_outside_the_vocabulary_are_an_invalid_prompt(tenant, noise):
    error = _complete(tenant.client, prompt=[999_999_999]).json()["error"]
    assert (error["code"], error["param"]) == ("invalid_prompt", "prompt")


def test_a_multipart_body_that_does_not_parse_is_invalid_body_not_invalid_json(tenant):
    response = tenant.client.generic(
        "POST",
        "/v1/files",
        b"--nope\r\ngarbage",
        content_type="multipart/form-data",  # no boundary
    )
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "invalid_body"
    assert (
        tenant.client.generic("POST", "/v1/completions", "{oops", content_type="application/json").json()["error"][
            "code"
        ]
        == "invalid_json"
    )


def test_openai_sdk(live_server, tenant, noise):
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0, timeout=60)
    completion = client.completions.create(model="noise", prompt="Once upon a time", max_tokens=5, temperature=0)
    assert completion.choices[0].text and completion.usage.completion_tokens == 5
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model="noise", prompt="Once upon a time", max_tokens=5, temperature=0, stream=True
        )
        if c.choices
    )
    assert streamed == completion.choices[0].text
