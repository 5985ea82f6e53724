"""The rethink answer: draft → (a follow-up made standalone) → key terms → search with them → revised answer, as
events (steps, then the answer's tokens) or one body."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.contrib.auth.models import AbstractUser

from apps.chat.selectors import ServedModel, chat_model_get
from apps.chat.services import chat_complete, chat_stream
from apps.plugins.filters import Filter, filters_parse
from apps.plugins.models import Plugin
from apps.plugins.selectors import (
    DEFAULT_TOP_K,
    plugin_get_usable,
    plugin_search_in,
    score_threshold_param,
    search_params,
)
from apps.rerank.selectors import RerankOption, rerank_option_parse
from apps.search.rewrite import standalone_query
from workers.errors import DomainError, InvalidRequest
from workers.retrieval.analyzer import remove_stop_phrases
from workers.retrieval.profiles import get_profile
from workers.runtime.specs import ChatMessage, GenerationRequest, GenerationResult, SamplingParams

_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]{2,}")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]+|[0-9]+(?:[.,][0-9]+)*")
MAX_KEY_TERMS = 10
_TURN_ROLES: tuple[tuple[Literal["user", "assistant"], str], ...] = (("user", "human"), ("assistant", "assistant"))
PASSAGE_CHAR_BUDGETS = (800, 400, 200, 80, 0)
DEFAULT_RETHINK_PROMPT = (
    "Answer the question using the numbered passages below. A draft answer is given: check it against the "
    "passages, correct what they contradict, keep what they support, and cite the passages you use as [n]."
)


def key_terms(*, query: str, kind: str = "generic", limit: int | None = MAX_KEY_TERMS) -> list[str]:
    """Content words of ``query``: the profile's question wording (stop phrases) removed, Chinese runs and Latin
    words kept, in order, without repeats (no model involved)."""
    stripped = remove_stop_phrases(text=query, phrases=get_profile(kind=kind).stop_phrases)
    terms: list[str] = []
    for match in re.finditer(f"{_CJK_RUN.pattern}|{_LATIN_WORD.pattern}", stripped):
        term = match.group()
        if term.lower() not in (t.lower() for t in terms):
            terms.append(term)
    return terms[:limit]


def search_query(*, query: str, kind: str = "generic") -> str:
    """What rethink searches with: all of ``query``'s key terms (``query`` itself when it has none)."""
    return " ".join(key_terms(query=query, kind=kind, limit=None)) or query.strip()


@dataclass
class RethinkRequest:
    plugin: Plugin
    model: ServedModel
    query: str
    session: list[dict[str, str]]
    top_k: int
    tfidf_weight: float
    embedding_weight: float
    prompt_prefix: str
    show_search_result: bool
    temperature: float
    max_tokens: int | None = None  # of each generation (draft, revised answer); None: the model's max_new_tokens
    filters: Filter | None = None
    score_threshold: float | None = None
    rerank: RerankOption | None = None  # resolved up front (the plugin's default included); None: no reranking


def rethink_prepare(
    *,
    user: AbstractUser,
    plugin: str,
    query: str,
    session: Sequence[dict[str, str]] = (),
    search_result_num: int | None = None,
    prompt_prefix: str | None = None,
    tfidf_weight: float | None = None,
    embedding_weight: float | None = None,
    show_search_result: bool | None = None,
    model: str | None = None,
    temperature: float = SamplingParams.temperature,
    max_tokens: int | None = None,
    filters: Any = None,
    score_threshold: float | None = None,
    rerank: Any = None,
) -> RethinkRequest:
    """Validate everything up front, so that a streamed answer never starts on a request that cannot succeed."""
    found = plugin_get_usable(user=user, plugin=plugin)
    top_k = search_result_num if search_result_num is not None else found.params.get("top_k", DEFAULT_TOP_K)
    query, top_k, sparse, dense = search_params(
        plugin=found, query=query, top_k=top_k, tfidf_weight=tfidf_weight, embedding_weight=embedding_weight
    )
    parsed_filters = filters_parse(value=filters)
    threshold = score_threshold_param(value=score_threshold)
    rerank_option = rerank_option_parse(value=found.params.get("rerank") if rerank is None else rerank)
    served = chat_model_get(user=user, model=model)
    if max_tokens is not None and max_tokens > served.spec.max_new_tokens:
        raise InvalidRequest(
            f"max_tokens may be at most {served.spec.max_new_tokens} for {served.id}.", param="max_tokens"
        )
    return RethinkRequest(
        plugin=found,
        model=served,
        query=query,
        session=list(session),
        top_k=top_k,
        tfidf_weight=sparse,
        embedding_weight=dense,
        prompt_prefix=found.params.get("prompt_prefix", "") if prompt_prefix is None else prompt_prefix,
        show_search_result=(
            bool(found.params.get("show_search_result", False)) if show_search_result is None else show_search_result
        ),
        temperature=temperature,
        max_tokens=max_tokens,
        filters=parsed_filters,
        score_threshold=threshold,
        rerank=rerank_option,
    )


def _generation_request(request: RethinkRequest, messages: list[ChatMessage]) -> GenerationRequest:
    params = SamplingParams(temperature=request.temperature, max_new_tokens=request.max_tokens)
    return GenerationRequest(spec=request.model.spec, messages=messages, params=params)


def _generate(request: RethinkRequest, messages: list[ChatMessage], usage: list[GenerationResult]) -> str:
    result = chat_complete(request=_generation_request(request, messages))
    usage.append(result)
    return result.text.strip()


def _stripped(deltas: Iterator[str]) -> Iterator[str]:
    """``deltas`` whose concatenation is the stripped concatenation of the input (as ``_generate`` strips):
    leading whitespace dropped, trailing whitespace held back until more text follows it."""
    started, held = False, ""
    for delta in deltas:
        if not started:
            delta = delta.lstrip()
            started = bool(delta)
        text = held + delta
        kept = text.rstrip()
        held = text[len(kept) :]
        if kept:
            yield kept


def _streamed(request: RethinkRequest, messages: list[ChatMessage], usage: list[GenerationResult]) -> Iterator[str]:
    """The answer's text as it is generated. Errors before the first token (a prompt too long for the model)
    are raised by this call, not by the iterator."""
    chunks = chat_stream(request=_generation_request(request, messages))

    def deltas() -> Iterator[str]:
        try:
            for chunk in chunks:
                if chunk.finished and chunk.result is not None:
                    usage.append(chunk.result)
                if chunk.delta:
                    yield chunk.delta
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # the client left: stop generating for nobody

    return _stripped(deltas())


def _numbered(passages: Sequence[dict[str, Any]], *, budget: int) -> str:
    lines = []
    for number, passage in enumerate(passages, start=1):
        text = " ".join(passage["text"].split())
        text = text if len(text) <= budget else text[:budget] + "…"
        lines.append(f"[{number}] {passage['title']}: {text}" if budget else f"[{number}] {passage['title']}")
    return "\n".join(lines)


def rethink_prompt(
    *, request: RethinkRequest, passages: Sequence[dict[str, Any]], draft: str, budget: int, question: str | None = None
) -> str:
    head = "\n".join(part for part in (request.prompt_prefix.strip(), DEFAULT_RETHINK_PROMPT) if part)
    return (
        f"{head}\n\nPassages:\n{_numbered(passages, budget=budget) or '(none found)'}\n\n"
        f"Question: {question or request.query}\nDraft answer: {draft}\nRevised answer:"
    )


def _revised(
    request: RethinkRequest,
    *,
    passages: Sequence[dict[str, Any]],
    draft: str,
    question: str,
    usage: list[GenerationResult],
    stream: bool,
) -> Iterator[str]:
    """The revised answer: its tokens as they come when ``stream``, else the whole answer at once. The passages
    shrink until the prompt fits the model; a stream starts only once a prompt fits, so nothing sent is
    taken back."""
    for budget in PASSAGE_CHAR_BUDGETS:
        messages = [
            ChatMessage(
                role="user",
                content=rethink_prompt(
                    request=request, passages=passages, draft=draft, budget=budget, question=question
                ),
            )
        ]
        try:
            if not stream:
                yield _generate(request, messages, usage)
                return
            answer = _streamed(request, messages, usage)
            break
        except DomainError as exc:
            if exc.code != "context_length_exceeded" or budget == PASSAGE_CHAR_BUDGETS[-1]:
                raise
    yield from answer


def rethink_events(
    request: RethinkRequest, *, usage: list[GenerationResult] | None = None, stream: bool = False
) -> Iterator[dict[str, Any]]:
    """``{"step": {...}}`` events as the work happens (with ``stream``, ``{"delta": text}`` events of the revised
    answer before its step), then ``{"finished": true, "result", "draft", "steps", "search_result"?}``.
    ``usage`` collects the model results (for usage records)."""
    usage = usage if usage is not None else []
    messages = [ChatMessage(role=role, content=turn[key]) for turn in request.session for role, key in _TURN_ROLES]
    draft = _generate(request, [*messages, ChatMessage(role="user", content=request.query)], usage)
    steps: list[dict[str, Any]] = []

    def step(action: str, observation: Any, **details: Any) -> dict[str, Any]:
        steps.append({"action": action, **details, "observation": observation})
        return {"finished": False, "step": steps[-1]}

    query, question = request.query, request.query
    if any(m.content.strip() for m in messages):
        standalone = standalone_query(spec=request.model.spec, history=messages, question=request.query, usage=usage)
        query = standalone.text
        question = query if standalone.method == "model" else request.query
        yield step("rewrite query", query, method=standalone.method)
    yield step("extract key terms", ", ".join(key_terms(query=query, kind=request.plugin.kind)))
    searched = search_query(query=query, kind=request.plugin.kind)
    passages = plugin_search_in(
        plugin=request.plugin,
        query=searched,
        top_k=request.top_k,
        tfidf_weight=request.tfidf_weight,
        embedding_weight=request.embedding_weight,
        filters=request.filters,
        score_threshold=request.score_threshold,
        rerank=request.rerank or False,
        rerank_query=query,
    )
    yield step(f"search {request.plugin.slug}", _numbered(passages, budget=PASSAGE_CHAR_BUDGETS[0]), query=searched)
    parts: list[str] = []
    for delta in _revised(request, passages=passages, draft=draft, question=question, usage=usage, stream=stream):
        parts.append(delta)
        if stream:
            yield {"finished": False, "delta": delta}
    answer = "".join(parts)
    yield step("rethink", answer)
    body: dict[str, Any] = {"finished": True, "result": answer, "draft": draft, "steps": steps}
    if request.show_search_result:
        body["search_result"] = passages
    yield body


def rethink(request: RethinkRequest, *, usage: list[GenerationResult] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for event in rethink_events(request, usage=usage):
        body = event
    body.pop("finished", None)
    return body
