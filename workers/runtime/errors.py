"""Typed errors raised by the runtime: domain errors, so the API answers them with no translation table."""

from __future__ import annotations

from workers.errors import DomainError, ErrorKind


class RuntimeErrorBase(DomainError):
    """Base class for every error the runtime raises on purpose."""

    kind = ErrorKind.INTERNAL
    default_code = "generation_failed"


class ModelLoadError(RuntimeErrorBase):
    """The model, tokenizer or adapter could not be loaded."""

    kind = ErrorKind.UNAVAILABLE
    default_code = "model_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(f"The model could not be loaded: {message}")


class InvalidMessagesError(RuntimeErrorBase):
    """The conversation (or raw prompt) cannot become a prompt, e.g. it does not end with a user turn, or a token
    id is outside the vocabulary."""

    kind = ErrorKind.INVALID
    default_code = "invalid_messages"

    def __init__(self, message: str, *, param: str = "messages") -> None:
        super().__init__(message, param=param, code="invalid_prompt" if param == "prompt" else None)


class InvalidConstraintError(RuntimeErrorBase):
    """A structured-output request (JSON schema, required tool call) that the grammar engine cannot enforce."""

    kind = ErrorKind.INVALID
    default_code = "invalid_schema"

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message, param=param)


class InputTooLongError(RuntimeErrorBase):
    """Even the system prompt plus the last user turn do not fit the model's input budget."""

    kind = ErrorKind.INVALID
    default_code = "context_length_exceeded"

    def __init__(self, *, prompt_tokens: int, max_input_tokens: int, param: str = "messages") -> None:
        after = " after dropping all earlier turns" if param == "messages" else ""
        super().__init__(
            f"prompt needs {prompt_tokens} tokens{after}, but the model accepts at most {max_input_tokens}",
            param=param,
        )
        self.prompt_tokens = prompt_tokens
        self.max_input_tokens = max_input_tokens


class UpstreamError(RuntimeErrorBase):
    """The upstream API failed: connection error, HTTP error status or unreadable response. ``reason`` is what it
    said, without the status."""

    kind = ErrorKind.UPSTREAM_FAILED
    default_code = "upstream_error"

    def __init__(self, *, message: str, status: int | None = None) -> None:
        super().__init__(f"The upstream model server failed: {message}")
        self.status = status
        self.reason = message


class UpstreamTimeoutError(RuntimeErrorBase):
    """The upstream API did not answer in time."""

    kind = ErrorKind.UPSTREAM_TIMEOUT
    default_code = "upstream_timeout"

    def __init__(self, message: str) -> None:
        super().__init__(f"The upstream model server did not answer in time: {message}")


class EngineBusyError(RuntimeErrorBase):
    """The model's engine already holds as many requests as it takes; ``retry_after_s`` says when to retry."""

    kind = ErrorKind.UNAVAILABLE
    default_code = "model_overloaded"

    def __init__(self, *, pending: int, retry_after_s: int) -> None:
        super().__init__(
            f"The model is at capacity: it is serving {pending} requests, its limit; retry in {retry_after_s} s",
            retry_after_s=retry_after_s,
        )
        self.pending = pending


class GenerationFailedError(RuntimeErrorBase):
    """The serving engine failed or stopped while generating."""

    kind = ErrorKind.UNAVAILABLE
    default_code = "engine_failed"

    def __init__(self, message: str) -> None:
        super().__init__(f"Generation failed in the serving engine: {message}")
