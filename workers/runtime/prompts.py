"""The one place that turns a conversation into token ids, for serving and for training alike.

Each family renders a conversation as a list of segments (token ids + whether they are an assistant answer the
model is trained on). Serving concatenates the segments and ends with the family's cue for the next answer;
training uses the same segments as labels, so the two can never drift apart. Text pieces are encoded one
segment at a time (never across a segment boundary) for the same reason.

Formats (``enc`` = ``tokenizer.encode(text, add_special_tokens=False)``; ``bos``/``eos`` are token ids):

* ``tigerbot``: ``bos + enc(system) + Σ[enc("\\n\\n### Instruction:\\n{user}\\n\\n### Response:\\n") +
  enc(answer) + eos]``. The system prompt, if any, is plain text before the first instruction (TigerBot has no
  system slot; this is how its own tooling prepends instructions). Answers in the history end with eos,
  exactly as the model emits them.
* ``baichuan2``: ``enc(system) + Σ[[195] + enc(user) + [196] + enc(answer) + eos]``; a prompt ends in ``196``.
* ``llama2-chat``: ``Σ[bos + enc("[INST] {user} [/INST]") + enc(answer) + eos]``, the first user text being
  ``"<<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user}"`` when there is a system prompt. The answer is encoded on its
  own so that SentencePiece adds the word-boundary space after ``[/INST]``.
* ``hf-template``: ``tokenizer.apply_chat_template``; answer segments are what the template adds for each
  assistant message (so they include its end-of-turn marker).

Before rendering, tools/tool calls/tool results become text (see ``tools.py``), all system messages are joined
into one system prompt, consecutive turns of the same role are joined with a newline, and turns are paired
into rounds of (user, assistant). When a prompt is too long, whole rounds are dropped from the oldest; the
system prompt and the last user turn are always kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

from transformers import PreTrainedTokenizerBase

from workers.runtime.errors import InputTooLongError, InvalidMessagesError
from workers.runtime.specs import ChatMessage, Family, ToolSpec
from workers.runtime.tokenizer_text import chat_template_text
from workers.runtime.tools import render_tool_messages

BAICHUAN_USER_ID = 195
BAICHUAN_ASSISTANT_ID = 196
TIGERBOT_INSTRUCTION = "\n\n### Instruction:\n"
TIGERBOT_RESPONSE = "\n\n### Response:\n"
IGNORE_INDEX = -100


class PromptIds(NamedTuple):
    input_ids: list[int]
    dropped_turns: int
    """How many of the oldest rounds (a user turn and its answer) were left out to fit."""


class TrainingExample(NamedTuple):
    input_ids: list[int]
    labels: list[int]
    """``IGNORE_INDEX`` everywhere except the assistant answers (and their eos)."""


@dataclass(frozen=True)
class _Round:
    user: str
    assistant: str | None


class _Segment(NamedTuple):
    ids: list[int]
    trained: bool


_Encode = Callable[[str], tuple[int, ...]]


def _conversation(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> tuple[str, list[_Round]]:
    plain = render_tool_messages(messages=messages, tools=tools)
    system = "\n\n".join(m.content for m in plain if m.role == "system")
    turns: list[tuple[str, str]] = []
    for message in plain:
        if message.role == "system":
            continue
        if turns and turns[-1][0] == message.role:
            turns[-1] = (message.role, f"{turns[-1][1]}\n{message.content}")
        else:
            turns.append((message.role, message.content))
    rounds: list[_Round] = []
    for role, content in turns:
        if role == "user":
            rounds.append(_Round(user=content, assistant=None))
        elif rounds and rounds[-1].assistant is None:
            rounds[-1] = _Round(user=rounds[-1].user, assistant=content)
        else:
            rounds.append(_Round(user="", assistant=content))
    return system, rounds


def _special(token_id: int | None) -> list[int]:
    return [] if token_id is None else [token_id]


def _tigerbot(tok: PreTrainedTokenizerBase, enc: _Encode, system: str, rounds: list[_Round]) -> list[_Segment]:
    segments = [_Segment([*_special(tok.bos_token_id), *enc(system)], False)]
    for r in rounds:
        segments.append(_Segment([*enc(f"{TIGERBOT_INSTRUCTION}{r.user}{TIGERBOT_RESPONSE}")], False))
        if r.assistant is not None:
            segments.append(_Segment([*enc(r.assistant), *_special(tok.eos_token_id)], True))
    return segments


def _baichuan2(tok: PreTrainedTokenizerBase, enc: _Encode, system: str, rounds: list[_Round]) -> list[_Segment]:
    segments = [_Segment([*enc(system)], False)]
    for r in rounds:
        segments.append(_Segment([BAICHUAN_USER_ID, *enc(r.user), BAICHUAN_ASSISTANT_ID], False))
        if r.assistant is not None:
            segments.append(_Segment([*enc(r.assistant), *_special(tok.eos_token_id)], True))
    return segments


def _llama2(tok: PreTrainedTokenizerBase, enc: _Encode, system: str, rounds: list[_Round]) -> list[_Segment]:
    segments = []
    for i, r in enumerate(rounds):
        user = f"<<SYS>>\n{system}\n<</SYS>>\n\n{r.user}" if system and i == 0 else r.user
        segments.append(_Segment([*_special(tok.bos_token_id), *enc(f"[INST] {user} [/INST]")], False))
        if r.assistant is not None:
            segments.append(_Segment([*enc(r.assistant), *_special(tok.eos_token_id)], True))
    return segments


def _hf_chat(system: str, rounds: list[_Round]) -> list[dict[str, str]]:
    chat = [{"role": "system", "content": system}] if system else []
    for r in rounds:
        chat.append({"role": "user", "content": r.user})
        if r.assistant is not None:
            chat.append({"role": "assistant", "content": r.assistant})
    return chat


def _hf_template(tok: PreTrainedTokenizerBase, enc: _Encode, system: str, rounds: list[_Round]) -> list[_Segment]:
    # Rendered in one go: templates need not be splittable into turns to serve them.
    prompt = chat_template_text(tok, _hf_chat(system, rounds), add_generation_prompt=True)
    return [_Segment([*enc(prompt)], False)]


def _hf_template_turns(tok: PreTrainedTokenizerBase, enc: _Encode, system: str, rounds: list[_Round]) -> list[_Segment]:
    """Split into turns by rendering ever longer prefixes of the chat; each answer segment is what the template
    adds for that assistant message."""
    chat = _hf_chat(system, rounds)
    segments: list[_Segment] = []
    done: list[int] = []
    for end, message in enumerate(chat, start=1):
        if message["role"] == "system":
            continue
        trained = message["role"] == "assistant"
        # A user message is rendered with the generation prompt, so that the answer starts right after it.
        text = chat_template_text(tok, chat[:end], add_generation_prompt=not trained)
        ids = [*enc(text)]
        if ids[: len(done)] != done:
            raise ValueError("the chat template is not prefix-stable, so answers cannot be labelled for training")
        segments.append(_Segment(ids[len(done) :], trained))
        done = ids
    return segments


_RENDERERS = {
    "tigerbot": _tigerbot,
    "baichuan2": _baichuan2,
    "llama2-chat": _llama2,
    "hf-template": _hf_template,
}


def _fit(
    *,
    family: Family,
    tokenizer: PreTrainedTokenizerBase,
    system: str,
    rounds: list[_Round],
    max_tokens: int,
    training: bool,
) -> tuple[list[_Segment], int]:
    """Render, dropping the oldest rounds until the result fits; the last round is never dropped."""

    @cache
    def enc(text: str) -> tuple[int, ...]:
        return tuple(tokenizer.encode(text, add_special_tokens=False))

    render = _hf_template_turns if training and family == "hf-template" else _RENDERERS[family]
    for dropped in range(len(rounds)):
        segments = render(tokenizer, enc, system, rounds[dropped:])
        if sum(len(s.ids) for s in segments) <= max_tokens:
            return segments, dropped
    return segments, len(rounds) - 1


def build_prompt_ids(
    *,
    family: Family,
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[ChatMessage],
    max_input_tokens: int,
    tools: Sequence[ToolSpec] = (),
) -> PromptIds:
    """Prompt ids for the model to write the next assistant answer.

    Raises ``InputTooLongError`` when the system prompt plus the last user turn exceed ``max_input_tokens``.
    """
    system, rounds = _conversation(messages, tools)
    if not rounds or rounds[-1].assistant is not None:
        raise InvalidMessagesError("the conversation must end with a user or tool message")
    segments, dropped = _fit(
        family=family, tokenizer=tokenizer, system=system, rounds=rounds, max_tokens=max_input_tokens, training=False
    )
    input_ids = [token for segment in segments for token in segment.ids]
    if len(input_ids) > max_input_tokens:
        raise InputTooLongError(prompt_tokens=len(input_ids), max_input_tokens=max_input_tokens)
    return PromptIds(input_ids=input_ids, dropped_turns=dropped)


def build_training_example(
    *,
    family: Family,
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[ChatMessage],
    max_length: int,
    tools: Sequence[ToolSpec] = (),
) -> TrainingExample:
    """Ids and labels for supervised fine-tuning on every assistant answer, in exactly the serving format.

    Oldest rounds are dropped to fit ``max_length``; if the last round alone is longer it is cut at
    ``max_length``, and ``InputTooLongError`` is raised when that leaves no answer token to learn from.
    """
    system, rounds = _conversation(messages, tools)
    if not rounds or rounds[-1].assistant is None:
        raise InvalidMessagesError("a training conversation must end with an assistant message")
    segments, _ = _fit(
        family=family, tokenizer=tokenizer, system=system, rounds=rounds, max_tokens=max_length, training=True
    )
    input_ids = [token for segment in segments for token in segment.ids]
    labels = [token if s.trained else IGNORE_INDEX for s in segments for token in s.ids]
    if all(label == IGNORE_INDEX for label in labels[:max_length]):
        raise InputTooLongError(prompt_tokens=len(input_ids), max_input_tokens=max_length)
    return TrainingExample(input_ids=input_ids[:max_length], labels=labels[:max_length])
