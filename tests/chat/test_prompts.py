"""Prompt formats against token ids written out by hand from the literal pieces of each format."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from workers.runtime.errors import InputTooLongError, InvalidMessagesError
from workers.runtime.prompts import IGNORE_INDEX, build_prompt_ids, build_training_example
from workers.runtime.specs import ChatMessage, Family

BOS, EOS, USER, ASSISTANT = 1, 2, 195, 196
SYSTEM = ChatMessage(role="system", content="Be nice.")
HISTORY = [
    SYSTEM,
    ChatMessage(role="user", content="你好"),
    ChatMessage(role="assistant", content="Hi there"),
    ChatMessage(role="user", content="Weather?"),
]


def tokenizer_for(tiny_models: dict[Family, Path], family: Family) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(tiny_models[family])


def enc(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def test_tiny_tokenizers_encode_chinese_and_reserve_baichuan_ids(tiny_models: dict[Family, Path]) -> None:
    for family in tiny_models:
        tok = tokenizer_for(tiny_models, family)
        assert tok.decode(enc(tok, "北京天气 weather ☃")) == "北京天气 weather ☃"
        assert (tok.bos_token_id, tok.pad_token_id) == (BOS, 3)
    baichuan = tokenizer_for(tiny_models, "baichuan2")
    assert baichuan.convert_ids_to_tokens([USER, ASSISTANT]) == ["<reserved_106>", "<reserved_107>"]


def test_tigerbot_prompt(tiny_models: dict[Family, Path]) -> None:
    tok = tokenizer_for(tiny_models, "tigerbot")
    expected = [
        BOS,
        *enc(tok, "Be nice."),
        *enc(tok, "\n\n### Instruction:\n你好\n\n### Response:\n"),
        *enc(tok, "Hi there"),
        EOS,
        *enc(tok, "\n\n### Instruction:\nWeather?\n\n### Response:\n"),
    ]
    prompt = build_prompt_ids(family="tigerbot", tokenizer=tok, messages=HISTORY, max_input_tokens=512)
    assert prompt.input_ids == expected
    assert prompt.dropped_turns == 0


def test_baichuan2_prompt(tiny_models: dict[Family, Path]) -> None:
    tok = tokenizer_for(tiny_models, "baichuan2")
    expected = [
        *enc(tok, "Be nice."),
        USER,
        *enc(tok, "你好"),
        ASSISTANT,
        *enc(tok, "Hi there"),
        EOS,
        USER,
        *enc(tok, "Weather?"),
        ASSISTANT,
    ]
    assert build_prompt_ids(family="baichuan2", tokenizer=tok, messages=HISTORY, max_input_tokens=512).input_ids == (
        expected
    )


def test_llama2_chat_prompt(tiny_models: dict[Family, Path]) -> None:
    tok = tokenizer_for(tiny_models, "llama2-chat")
    expected = [
        BOS,
        *enc(tok, "[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\n你好 [/INST]"),
        *enc(tok, "Hi there"),
        EOS,
        BOS,
        *enc(tok, "[INST] Weather? [/INST]"),
    ]
    assert build_prompt_ids(family="llama2-chat", tokenizer=tok, messages=HISTORY, max_input_tokens=512).input_ids == (
        expected
    )


def test_hf_template_prompt(tiny_models: dict[Family, Path]) -> None:
    tok = tokenizer_for(tiny_models, "hf-template")
    expected = enc(
        tok,
        "<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n"
        "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n",
    )
    assert build_prompt_ids(family="hf-template", tokenizer=tok, messages=HISTORY, max_input_tokens=512).input_ids == (
        expected
    )


def test_training_labels_cover_only_assistant_answers(tiny_models: dict[Family, Path]) -> None:
    conversation = [*HISTORY, ChatMessage(role="assistant", content="Sunny")]
    tok = tokenizer_for(tiny_models, "baichuan2")
    example = build_training_example(family="baichuan2", tokenizer=tok, messages=conversation, max_length=512)
    first, second = [*enc(tok, "Hi there"), EOS], [*enc(tok, "Sunny"), EOS]
    prompt_1 = [*enc(tok, "Be nice."), USER, *enc(tok, "你好"), ASSISTANT]
    prompt_2 = [USER, *enc(tok, "Weather?"), ASSISTANT]
    assert example.input_ids == prompt_1 + first + prompt_2 + second
    ignored = [IGNORE_INDEX]
    assert example.labels == ignored * len(prompt_1) + first + ignored * len(prompt_2) + second


def test_training_labels_hf_template(tiny_models: dict[Family, Path]) -> None:
    tok = tokenizer_for(tiny_models, "hf-template")
    conversation = [ChatMessage(role="user", content="Hi"), ChatMessage(role="assistant", content="Hello")]
    example = build_training_example(family="hf-template", tokenizer=tok, messages=conversation, max_length=512)
    prompt = enc(tok, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    answer = enc(tok, "Hello<|im_end|>\n")
    assert example.input_ids == prompt + answer
    assert example.labels == [IGNORE_INDEX] * len(prompt) + answer


@pytest.mark.parametrize("family", ["tigerbot", "baichuan2", "llama2-chat", "hf-template"])
def test_training_example_is_the_serving_prompt_plus_the_answer(
    tiny_models: dict[Family, Path], family: Family
) -> None:
    tok = tokenizer_for(tiny_models, family)
    prompt = build_prompt_ids(family=family, tokenizer=tok, messages=HISTORY, max_input_tokens=512).input_ids
    answer = [*HISTORY, ChatMessage(role="assistant", content="Sunny")]
    example = build_training_example(family=family, tokenizer=tok, messages=answer, max_length=512)
    assert example.input_ids[: len(prompt)] == prompt
    answer_ids = example.input_ids[len(prompt) :]
    assert example.labels[len(prompt) :] == answer_ids
    assert tok.decode(answer_ids, skip_special_tokens=True).strip() == "Sunny"
    history_labels = [t for t in example.labels[: len(prompt)] if t != IGNORE_INDEX]
    assert tok.decode(history_labels, skip_special_tokens=True).strip() == "Hi there"


def test_long_history_drops_oldest_rounds_but_keeps_system_and_last_user(tiny_models: dict[Family, Path]) -> None:
    tok = tokenizer_for(tiny_models, "tigerbot")
    history = [SYSTEM]
    for i in range(10):
        history += [
            ChatMessage(role="user", content=f"question {i}"),
            ChatMessage(role="assistant", content=f"answer {i}"),
        ]
    history.append(ChatMessage(role="user", content="last question"))

    def instruction(text: str) -> list[int]:
        return enc(tok, f"\n\n### Instruction:\n{text}\n\n### Response:\n")

    kept = [
        BOS,
        *enc(tok, "Be nice."),
        *instruction("question 8"),
        *enc(tok, "answer 8"),
        EOS,
        *instruction("question 9"),
        *enc(tok, "answer 9"),
        EOS,
        *instruction("last question"),
    ]
    for budget in (len(kept), len(kept) + 3):
        prompt = build_prompt_ids(family="tigerbot", tokenizer=tok, messages=history, max_input_tokens=budget)
        assert prompt.input_ids == kept
        assert prompt.dropped_turns == 8


def test_last_user_turn_too_long_is_a_typed_error(tiny_models: dict[Family, Path]) -> None:
    tok = tokenizer_for(tiny_models, "llama2-chat")
    messages = [SYSTEM, ChatMessage(role="user", content="short"), ChatMessage(role="user", content="word " * 100)]
    with pytest.raises(InputTooLongError) as error:
        build_prompt_ids(family="llama2-chat", tokenizer=tok, messages=messages, max_input_tokens=50)
    assert error.value.max_input_tokens == 50
    assert error.value.prompt_tokens > 100


def test_conversation_must_end_with_user_turn(tiny_models: dict[Family, Path]) -> None:
    tok = tokenizer_for(tiny_models, "tigerbot")
    with pytest.raises(InvalidMessagesError):
        build_prompt_ids(family="tigerbot", tokenizer=tok, messages=HISTORY[:3], max_input_tokens=512)
    with pytest.raises(InvalidMessagesError):
        build_training_example(family="tigerbot", tokenizer=tok, messages=HISTORY, max_length=512)
