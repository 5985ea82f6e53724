"""Plain, JSON-safe value types shared by the Django side and the workers (they cross Celery as dicts)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from workers.serialization import DictSerializable

Family = Literal["tigerbot", "llama2-chat", "baichuan2", "hf-template"]
Backend = Literal["local", "openai-upstream"]
Quantization = Literal["none", "8bit", "4bit"]
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls"]
# A raw prompt (``/v1/completions``): text, or token ids of the model's tokenizer.
Prompt = str | list[int]
StructuredKind = Literal["json_object", "json_schema", "tool_calls"]
# Most alternatives per generated token that ``top_logprobs`` may ask for (OpenAI's limit).
MAX_TOP_LOGPROBS = 20

FAMILIES: tuple[str, ...] = get_args(Family)
# Key in a checkpoint's config.json recording the prompt format the model was trained with.
FAMILY_CONFIG_KEY = "tigerplatform_family"


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def infer_family(*, path: str | Path) -> Family | None:
    """The prompt family recorded in a checkpoint's config.json, or None when it was not recorded."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        return None
    family = json.loads(config_file.read_text()).get(FAMILY_CONFIG_KEY)
    return family if family in FAMILIES else None


@dataclass(frozen=True)
class ModelSpec(DictSerializable):
    """Everything a worker needs to serve one model; ``adapter_path`` adds a LoRA on the base at ``path``."""

    name: str
    family: Family
    backend: Backend = "local"
    path: str = ""
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    upstream_model: str = ""
    dtype: Dtype = "auto"
    quantization: Quantization = "none"
    rope_scaling: dict[str, Any] | None = None
    max_input_tokens: int = 2048
    max_new_tokens: int = 512
    adapter_path: str = ""
    device: str = "auto"
    timeout_s: float = 120.0
    # More base URLs of the same upstream (replicas of ``base_url``).
    replica_urls: tuple[str, ...] = ()
    # A local checkpoint also served by an OpenAI-compatible server (vLLM): chat goes to ``serve_url`` (and
    # ``replica_urls``) while ``path`` stays for training and tokenizing.
    serve_url: str = ""

    def __post_init__(self) -> None:
        _check_choice("family", self.family, FAMILIES)
        _check_choice("backend", self.backend, get_args(Backend))
        _check_choice("quantization", self.quantization, get_args(Quantization))
        _check_choice("dtype", self.dtype, get_args(Dtype))
        if self.backend == "local" and not self.path:
            raise ValueError("a local model needs a path")
        if self.backend == "openai-upstream" and not self.base_url:
            raise ValueError("an upstream model needs a base_url")
        if self.max_input_tokens <= 0 or self.max_new_tokens <= 0:
            raise ValueError("max_input_tokens and max_new_tokens must be positive")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(**{**data, "replica_urls": tuple(data.get("replica_urls", ()))})


@dataclass(frozen=True)
class ToolCall(DictSerializable):
    """A function call requested by the model; ``arguments`` is JSON text, as in the OpenAI API."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolSpec(DictSerializable):
    """A function the model may call; ``parameters`` is a JSON schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatMessage(DictSerializable):
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        _check_choice("role", self.role, get_args(Role))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatMessage:
        calls = tuple(ToolCall.from_dict(call) for call in data.get("tool_calls", ()))
        return cls(**{**data, "tool_calls": calls})


@dataclass(frozen=True)
class StructuredOutput(DictSerializable):
    """What the output must be, enforced while decoding: any JSON object (``json_object``), JSON valid against
    ``schema`` (``json_schema``; ``name`` is the caller's name for it), or one or more calls of the request's tools
    (``tool_calls``; one only when ``parallel_tool_calls`` is false)."""

    kind: StructuredKind
    schema: dict[str, Any] | None = None
    name: str = ""
    parallel_tool_calls: bool = True

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, get_args(StructuredKind))
        if self.kind == "json_schema" and not isinstance(self.schema, dict):
            raise ValueError("a json_schema output needs a schema")


@dataclass(frozen=True)
class SamplingParams(DictSerializable):
    """Decoding settings; temperature 0 = greedy, top_k 0 = no top-k cut, max_new_tokens None = the spec's."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    max_new_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    structured: StructuredOutput | None = None
    # Log probabilities of each generated token, with ``top_logprobs`` alternatives (0..MAX_TOP_LOGPROBS).
    logprobs: bool = False
    top_logprobs: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition_penalty must be > 0")
        if self.max_new_tokens is not None and self.max_new_tokens <= 0:
            raise ValueError("max_new_tokens must be positive")
        if any(not s for s in self.stop):
            raise ValueError("stop sequences must be non-empty")
        if not 0 <= self.top_logprobs <= MAX_TOP_LOGPROBS:
            raise ValueError(f"top_logprobs must be in [0, {MAX_TOP_LOGPROBS}]")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingParams:
        structured = data.get("structured")
        return cls(
            **{
                **data,
                "stop": tuple(data.get("stop", ())),
                "structured": StructuredOutput.from_dict(structured) if structured else None,
            }
        )


@dataclass(frozen=True)
class GenerationRequest(DictSerializable):
    """One answer to generate: ``messages`` in the model's chat format, or, when given, the raw ``prompt`` (text or
    token ids, for ``/v1/completions``); with ``tools`` the answer may be calls of them."""

    spec: ModelSpec
    messages: Sequence[ChatMessage]
    params: SamplingParams
    tools: Sequence[ToolSpec] = ()
    prompt: Prompt | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        return cls(
            spec=ModelSpec.from_dict(data["spec"]),
            messages=tuple(ChatMessage.from_dict(message) for message in data["messages"]),
            params=SamplingParams.from_dict(data["params"]),
            tools=tuple(ToolSpec.from_dict(tool) for tool in data.get("tools", ())),
            prompt=data.get("prompt"),
        )


@dataclass(frozen=True)
class GenerationResult(DictSerializable):
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason
    tool_calls: tuple[ToolCall, ...] = ()
    # Per generated token, in OpenAI's shape ``{token, logprob, bytes, top_logprobs: [...]}``, when asked for.
    logprobs: tuple[dict[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        _check_choice("finish_reason", self.finish_reason, get_args(FinishReason))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationResult:
        calls = tuple(ToolCall.from_dict(call) for call in data.get("tool_calls", ()))
        logprobs = data.get("logprobs")
        return cls(**{**data, "tool_calls": calls, "logprobs": tuple(logprobs) if logprobs is not None else None})


@dataclass(frozen=True)
class StreamChunk(DictSerializable):
    """One streamed piece of text; the last chunk has ``finished=True`` and carries the full result."""

    delta: str
    finished: bool = False
    result: GenerationResult | None = None
    # The tokens this chunk's text came from (only when log probabilities were asked for).
    logprobs: tuple[dict[str, Any], ...] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamChunk:
        result, logprobs = data.get("result"), data.get("logprobs")
        return cls(
            **{
                **data,
                "result": GenerationResult.from_dict(result) if result is not None else None,
                "logprobs": tuple(logprobs) if logprobs is not None else None,
            }
        )


class ChunkStream(Protocol):
    """The chunks of one streamed answer; ``close`` abandons it (and frees what generates it)."""

    def __iter__(self) -> Iterator[StreamChunk]: ...

    def __next__(self) -> StreamChunk: ...

    def close(self) -> None: ...


class ClosingStream(Iterator[StreamChunk]):
    """The chunks of a generator whose ``close`` abandons the answer even before the first chunk was asked for:
    closing a generator that never started runs none of its code (its ``finally`` included), so ``on_unstarted_close``
    does what that ``finally`` would have done."""

    def __init__(self, chunks: Generator[StreamChunk, None, None], *, on_unstarted_close: Callable[[], None]) -> None:
        self._chunks = chunks
        self._on_unstarted_close = on_unstarted_close

    def __next__(self) -> StreamChunk:
        return next(self._chunks)

    def close(self) -> None:
        if inspect.getgeneratorstate(self._chunks) == inspect.GEN_CREATED:
            self._on_unstarted_close()
        self._chunks.close()
