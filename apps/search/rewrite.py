"""Follow-ups made standalone before retrieval: after "Who wrote X?", "When was he born?" has to be searched as
"When was <the author> born?". The request's own chat model rewrites it; what a small model gets wrong (nothing,
a run-on, an answer instead of a question, the pronoun left as it was) is caught here and replaced by the
follow-up plus the user's previous turn, which still carries the topic."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from apps.chat.services import chat_complete
from workers.errors import DomainError
from workers.retrieval.analyzer import Analyzer
from workers.retrieval.profiles import QUESTION_WORDS
from workers.runtime.specs import ChatMessage, GenerationRequest, GenerationResult, ModelSpec, SamplingParams

logger = logging.getLogger(__name__)

REWRITE_INSTRUCTION = (
    "Rewrite the follow-up question so that it can be understood without the conversation: replace he, she, "
    "it, they and there with the names they refer to. Reply with the question only."
)
# Few-shot examples as earlier chat turns: SmolLM2-135M follows them far better than the instruction alone
# (asked in one message to complete "Standalone question:", it mostly answered the question instead).
REWRITE_EXAMPLES = (
    (
        (("Who wrote Pride and Prejudice?", "Jane Austen wrote Pride and Prejudice."),),
        "Where did she live?",
        "Where did Jane Austen live?",
    ),
    (
        (("What is the tallest mountain in Japan?", "Mount Fuji is the tallest mountain in Japan."),),
        "How high is it?",
        "How high is Mount Fuji?",
    ),
    (
        (("Who founded Microsoft?", "Bill Gates and Paul Allen founded Microsoft in 1975."),),
        "What did they build first?",
        "What did Bill Gates and Paul Allen build first?",
    ),
)
MAX_HISTORY_MESSAGES = 4
MAX_MESSAGE_CHARS = 400
MAX_REWRITE_TOKENS = 64
MAX_ADDED_CHARS = 150

REFERRING_WORDS = (
    "he",
    "she",
    "it",
    "they",
    "them",
    "him",
    "her",
    "his",
    "hers",
    "its",
    "their",
    "theirs",
    "there",
    "this",
    "that",
    "these",
    "those",
    "then",
    "one",
    "他",
    "她",
    "它",
    "其",
    "该",
    "此",
    "这",
    "那",
)

_PREFIX = re.compile(r"^\s*(?:standalone question|rewritten question|question|follow-up|user)\s*:\s*", re.I)
_REFERRING = re.compile("|".join(rf"\b{w}\b" if w.isascii() else w for w in REFERRING_WORDS), re.I)
_TERMS = Analyzer(stop_phrases=(*QUESTION_WORDS, *REFERRING_WORDS))

Method = Literal["model", "fallback"]


@dataclass(frozen=True)
class StandaloneQuery:
    text: str
    method: Method  # "model": the model's rewrite was used; "fallback": it was rejected
    rejected: str = ""  # why the model's rewrite was rejected (fallback only)


def _content_terms(text: str) -> set[str]:
    return {term for term in _TERMS.query_weights(query=text) if " " not in term}


def _transcript(history: Sequence[ChatMessage], question: str) -> str:
    lines = [
        f"{'User' if m.role == 'user' else 'Assistant'}: {' '.join(m.content.split())[:MAX_MESSAGE_CHARS]}"
        for m in history
    ]
    return "\n".join([*lines, f"Follow-up: {question}"])


def rewrite_messages(*, history: Sequence[ChatMessage], question: str) -> list[ChatMessage]:
    messages = [ChatMessage(role="system", content=REWRITE_INSTRUCTION)]
    for turns, follow_up, standalone in REWRITE_EXAMPLES:
        example = [
            message
            for asked, answered in turns
            for message in (ChatMessage(role="user", content=asked), ChatMessage(role="assistant", content=answered))
        ]
        messages += [
            ChatMessage(role="user", content=_transcript(example, follow_up)),
            ChatMessage(role="assistant", content=standalone),
        ]
    return [*messages, ChatMessage(role="user", content=_transcript(history, question))]


def _cleaned(text: str) -> str:
    """The first line without a label or quotes, up to its first question mark (a question the model went on
    to answer is still a question)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = _PREFIX.sub("", first).strip().strip("\"'“”").strip()
    end = min((i for i in (first.find("?"), first.find("？")) if i >= 0), default=len(first) - 1)
    return first[: end + 1]


def rewrite_rejection(*, rewrite: str, question: str, history: Sequence[ChatMessage], truncated: bool) -> str:
    """Why ``rewrite`` is no usable standalone form of ``question`` ("" when it is)."""
    if not rewrite:
        return "empty"
    if truncated or len(rewrite) > len(question) + MAX_ADDED_CHARS:
        return "overlong"
    if question.rstrip().endswith(("?", "？")) and not rewrite.endswith(("?", "？")):
        return "not a question"
    asked, written = _content_terms(question), _content_terms(rewrite)
    if len(asked & written) * 2 < len(asked):
        return "lost the question's terms"
    if _REFERRING.search(question):
        earlier = set().union(*(_content_terms(m.content) for m in history))
        if not (written - asked) & earlier:
            return "reference left unresolved"
    return ""


def fallback_query(*, history: Sequence[ChatMessage], question: str) -> str:
    previous = next((m.content for m in reversed(history) if m.role == "user" and m.content.strip()), "")
    return " ".join(f"{question} {' '.join(previous.split())[:MAX_MESSAGE_CHARS]}".split())


def standalone_query(
    *,
    spec: ModelSpec,
    history: Sequence[ChatMessage],
    question: str,
    usage: list[GenerationResult] | None = None,
) -> StandaloneQuery:
    """``question`` rewritten by the model ``spec`` to stand without ``history`` (the earlier user and assistant
    turns, oldest first; only the last few are shown to the model). Call it only when there is history."""
    history = [m for m in history if m.role in ("user", "assistant") and m.content.strip()][-MAX_HISTORY_MESSAGES:]
    params = SamplingParams(temperature=0, max_new_tokens=MAX_REWRITE_TOKENS)
    try:
        messages = rewrite_messages(history=history, question=question)
        result = chat_complete(request=GenerationRequest(spec=spec, messages=messages, params=params))
    except DomainError as exc:
        if exc.code != "context_length_exceeded":
            raise
        reason, rewrite = "context_length_exceeded", ""
    else:
        if usage is not None:
            usage.append(result)
        rewrite = _cleaned(result.text)
        truncated = result.finish_reason == "length" and not rewrite.endswith(("?", "？"))
        reason = rewrite_rejection(rewrite=rewrite, question=question, history=history, truncated=truncated)
    if not reason:
        return StandaloneQuery(text=rewrite, method="model")
    logger.info("query rewrite rejected (%s): %r", reason, rewrite)
    return StandaloneQuery(text=fallback_query(history=history, question=question), method="fallback", rejected=reason)
