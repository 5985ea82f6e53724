"""Response bodies of ``/v1/chat/completions`` (both dialects) and ``/v1/models``, as pydantic models that both build
the bodies (``model_dump(mode="json", exclude_unset=True)``) and document them in the schema, as vLLM's OpenAI
server does. The OpenAI shapes follow the ``openai`` package's types field for field; fields are declared in the
order the bodies list them. Optional fields OpenAI may leave out are unset (so absent) unless a body sets them; a
key a body always sends, ``null`` or not, has no default. Bodies are built
with the validating constructors: pydantic runs them in Rust, faster than the pure-Python ``model_construct``
for models this small (measured), on the per-token path too."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
Sources = list[dict[str, Any]]
_SOURCES_DOC = "Search-augmented answers only: the sources the `[n]` markers cite ({index, title, url, snippet})."


class OpenAIObject(BaseModel):
    """A body built by this server (``dump`` gives exactly the keys that were set)."""

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class Usage(OpenAIObject):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: dict[str, int] | None = None
    prompt_tokens_details: dict[str, int] | None = None


class ResponseObject(OpenAIObject):
    """The fields an OpenAI response object starts with; subclasses narrow ``object`` and ``choices`` (pydantic keeps
    an inherited field in its place, so the keys keep their order)."""

    id: str
    object: str
    created: int
    model: str
    choices: list[Any]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class _ChatObject(ResponseObject):
    model_config = ConfigDict(extra="allow")

    service_tier: str | None = None
    sources: Sources | None = Field(default=None, description=_SOURCES_DOC)


class TopLogprob(OpenAIObject):
    token: str
    logprob: float
    bytes: list[int] | None = None


class ChatCompletionTokenLogprob(OpenAIObject):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(OpenAIObject):
    content: list[ChatCompletionTokenLogprob] | None
    refusal: list[ChatCompletionTokenLogprob] | None


class Function(OpenAIObject):
    name: str
    arguments: str


class ToolCall(OpenAIObject):
    id: str
    type: Literal["function"]
    function: Function


class AnnotationURLCitation(OpenAIObject):
    start_index: int
    end_index: int
    url: str
    title: str


class Annotation(OpenAIObject):
    type: Literal["url_citation"]
    url_citation: AnnotationURLCitation


class ChatCompletionMessage(OpenAIObject):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None
    tool_calls: list[ToolCall] | None = None
    annotations: list[Annotation] | None = None


class ChatCompletionChoice(OpenAIObject):
    index: int
    message: ChatCompletionMessage
    finish_reason: FinishReason
    logprobs: ChoiceLogprobs | None


class ChatCompletion(_ChatObject):
    """A chat completion; search-augmented answers add `sources` and the search's own fields (`search_query`)."""

    object: Literal["chat.completion"]
    choices: list[ChatCompletionChoice]


class ChoiceDeltaFunction(OpenAIObject):
    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCall(OpenAIObject):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ChoiceDeltaFunction | None = None


class Delta(OpenAIObject):
    role: Literal["developer", "system", "user", "assistant", "tool"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None


class ChunkChoice(OpenAIObject):
    index: int
    delta: Delta
    finish_reason: FinishReason | None
    logprobs: ChoiceLogprobs | None


class ChatCompletionChunk(_ChatObject):
    """One chat.completion.chunk event; the first one of a search-augmented stream adds ``sources`` (and the
    search's own fields), the usage chunk (``stream_options.include_usage``) has no choices."""

    object: Literal["chat.completion.chunk"]
    choices: list[ChunkChoice]


# --- TigerBot dialect (body has ``query``) ---------------------------------------------------------------


class TigerBotCompletion(OpenAIObject):
    """TigerBot's answer; search-augmented answers (`internet: true`) add `sources` and the search's fields."""

    model_config = ConfigDict(extra="allow")

    result: str
    input_tokens: int
    total_tokens: int
    sources: Sources | None = Field(default=None, description=_SOURCES_DOC)


class TigerBotChunk(OpenAIObject):
    """A streamed piece of text (the first event of a search-augmented stream carries ``sources`` instead)."""

    model_config = ConfigDict(extra="allow")

    finished: Literal[False]
    new_text: str
    sources: Sources | None = Field(default=None, description=_SOURCES_DOC)


class TigerBotFinal(OpenAIObject):
    """The stream's last event: the whole answer and its token counts."""

    finished: Literal[True]
    result: str
    input_tokens: int
    total_tokens: int


class ChatCompletionResponse(RootModel[ChatCompletion | TigerBotCompletion]):
    """The non-streamed answer in the request's dialect."""


# --- /v1/models --------------------------------------------------------------------------------------------


class Model(OpenAIObject):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(OpenAIObject):
    object: Literal["list"]
    data: list[Model]


class ModelDeleted(OpenAIObject):
    id: str
    object: str
    deleted: bool
