"""Typed errors raised by the runtime; the API layer maps each one to an HTTP status."""

from __future__ import annotations


class RuntimeErrorBase(Exception):
    """Base class for every error the runtime raises on purpose."""


class ModelLoadError(RuntimeErrorBase):
    """The model, tokenizer or adapter could not be loaded (maps to 500/503)."""


class InvalidMessagesError(RuntimeErrorBase):
    """The conversation (or raw prompt) cannot become a prompt, e.g. it does not end with a user turn, or a token
    id is outside the vocabulary (maps to 400 naming ``param``)."""

    def __init__(self, message: str, *, param: str = "messages") -> None:
        super().__init__(message)
        self.param = param


class InvalidConstraintError(RuntimeErrorBase):
    """A structured-output request (JSON schema, required tool call) that the grammar engine cannot enforce
    (maps to 400 naming ``param``)."""

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.param = param


class InputTooLongError(RuntimeErrorBase):
    """Even the system prompt plus the last user turn do not fit the model's input budget (maps to 400)."""

    def __init__(self, *, prompt_tokens: int, max_input_tokens: int, param: str = "messages") -> None:
        after = " after dropping all earlier turns" if param == "messages" else ""
        super().__init__(
            f"prompt needs {prompt_tokens} tokens{after}, but the model accepts at most {max_input_tokens}"
        )
        self.prompt_tokens = prompt_tokens
        self.max_input_tokens = max_input_tokens
        self.param = param


class UpstreamError(RuntimeErrorBase):
    """The upstream API failed: connection error, HTTP error status or unreadable response (maps to 502)."""

    def __init__(self, *, message: str, status: int | None = None) -> None:
        super().__init__(f"upstream error{f' {status}' if status is not None else ''}: {message}")
        self.status = status
        self.message = message


class UpstreamTimeoutError(RuntimeErrorBase):
    """The upstream API did not answer in time (maps to 504)."""


class EngineBusyError(RuntimeErrorBase):
    """The model's engine already holds as many requests as it takes (maps to 503 with Retry-After)."""

    def __init__(self, *, pending: int, retry_after_s: int) -> None:
        super().__init__(f"the model is serving {pending} requests, its limit; retry in {retry_after_s} s")
        self.pending = pending
        self.retry_after_s = retry_after_s


class GenerationFailedError(RuntimeErrorBase):
    """The serving engine failed or stopped while generating (maps to 503)."""
