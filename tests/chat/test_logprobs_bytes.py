"""Log probabilities' ``bytes``: each token's own raw UTF-8 bytes, so that the bytes of consecutive tokens join into
the text even where a character is split over tokens (OpenAI's contract); such a token's ``token`` spells its bytes
as ``\\x`` escapes, as OpenAI's API does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from apps.chat.models import ModelEndpoint
from workers.runtime.prompts import build_prompt_ids
from workers.runtime.specs import ChatMessage
from workers.runtime.tiny import make_tiny_model, overfit_tiny_model
from workers.runtime.token_bytes import token_bytes

# Emoji are bytes to the tiny tokenizer (4 tokens each); " п" is a space and half a Cyrillic letter, "р" a whole one.
MIXED_TEXT = "你好！我是一个人工智能助手。 👋😊 привет"
WAVE = ChatMessage(role="user", content="Repeat exactly: wave and smile")
WAVE_ANSWER = "👋😊 привет"


@pytest.fixture(scope="module")
def wave_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Answers ``WAVE`` with ``WAVE_ANSWER``, whose characters are split over tokens."""
    path = make_tiny_model(tmp_path_factory.mktemp("wave") / "model", family="tigerbot")
    return overfit_tiny_model(path, conversations=[[WAVE, ChatMessage(role="assistant", content=WAVE_ANSWER)]])


@pytest.fixture
def wave(db, wave_model: Path) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="wave", family="tigerbot", path=str(wave_model), max_new_tokens=32, max_input_tokens=256
    )


def _sse(response) -> list:
    body = b"".join(response.streaming_content).decode()
    events = [line[len("data: ") :] for line in body.split("\n\n") if line.startswith("data: ")]
    return [json.loads(event) for event in events if event != "[DONE]"]


def _joined(entries: list[dict]) -> bytes:
    return b"".join(bytes(entry["bytes"]) for entry in entries)


def _assert_split_characters_escaped(entries: list[dict]) -> None:
    partial = [entry for entry in entries if not _is_utf8(bytes(entry["bytes"]))]
    assert partial, "the answer should split characters over tokens"
    for scored in [*entries, *(top for entry in entries for top in entry["top_logprobs"])]:
        raw = bytes(scored["bytes"])
        assert scored["token"] == raw.decode("utf-8", errors="backslashreplace")
        assert "\ufffd" not in scored["token"]


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def _chat(client, **body):
    payload = {
        "model": "wave",
        "messages": [{"role": "user", "content": WAVE.content}],
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 2,
        **body,
    }
    return client.post("/v1/chat/completions", payload, format="json")


@pytest.mark.django_db(transaction=True)
def test_chat_logprobs_bytes_join_into_the_content(tenant, wave):
    response = _chat(tenant.client)
    assert response.status_code == 200, response.json()
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == WAVE_ANSWER
    entries = choice["logprobs"]["content"]
    # The last token is the end token: its bytes are its text, which the content leaves out.
    assert _joined(entries[:-1]) == WAVE_ANSWER.encode()
    _assert_split_characters_escaped(entries)
    for entry in entries:  # greedy: the most likely alternative is the token chosen, bytes and all
        assert entry["top_logprobs"][0]["bytes"] == entry["bytes"]
        assert entry["top_logprobs"][0]["token"] == entry["token"]


@pytest.mark.django_db(transaction=True)
def test_streamed_chat_logprobs_bytes_join_into_the_content(tenant, wave):
    events = _sse(_chat(tenant.client, stream=True))
    choices = [choice for event in events for choice in event["choices"]]
    content = "".join(choice["delta"].get("content") or "" for choice in choices)
    entries = [entry for choice in choices if choice.get("logprobs") for entry in choice["logprobs"]["content"]]
    assert content == WAVE_ANSWER
    assert _joined(entries[:-1]) == WAVE_ANSWER.encode()
    _assert_split_characters_escaped(entries)


def _complete(client, wave_model: Path, **body):
    tokenizer = AutoTokenizer.from_pretrained(wave_model)
    prompt = build_prompt_ids(
        family="tigerbot", tokenizer=tokenizer, messages=[WAVE], max_input_tokens=256, tools=()
    ).input_ids
    payload = {"model": "wave", "prompt": prompt, "temperature": 0, "logprobs": 2, "max_tokens": 32, **body}
    return client.post("/v1/completions", payload, format="json")


def _assert_legacy_logprobs(text: str, tokens: list[str], offsets: list[int], wave_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(wave_model)
    ids = tokenizer.encode(WAVE_ANSWER, add_special_tokens=False)
    raws = [token_bytes(tokenizer).piece(i).raw for i in ids]
    assert text == WAVE_ANSWER
    assert tokens[: len(ids)] == [raw.decode("utf-8", errors="backslashreplace") for raw in raws]
    # Each token starts where its first byte's character does.
    assert offsets[: len(ids)] == [len(b"".join(raws[:i]).decode(errors="ignore")) for i in range(len(ids))]


@pytest.mark.django_db(transaction=True)
def test_legacy_completion_tokens_and_offsets_follow_the_bytes(tenant, wave, wave_model):
    response = _complete(tenant.client, wave_model)
    assert response.status_code == 200, response.json()
    choice = response.json()["choices"][0]
    logprobs = choice["logprobs"]
    _assert_legacy_logprobs(choice["text"], logprobs["tokens"], logprobs["text_offset"], wave_model)
    assert "\ufffd" not in "".join(logprobs["tokens"])


@pytest.mark.django_db(transaction=True)
def test_streamed_legacy_completion_offsets_follow_the_bytes(tenant, wave, wave_model):
    events = _sse(_complete(tenant.client, wave_model, stream=True))
    choices = [choice for event in events for choice in event["choices"]]
    scored = [choice["logprobs"] for choice in choices if choice.get("logprobs")]
    text = "".join(choice["text"] for choice in choices)
    tokens = [token for logprobs in scored for token in logprobs["tokens"]]
    offsets = [offset for logprobs in scored for offset in logprobs["text_offset"]]
    _assert_legacy_logprobs(text, tokens, offsets, wave_model)


def test_byte_level_bpe_token_bytes_join_into_the_text(tiny_models):
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["tigerbot"])
    ids = tokenizer.encode(MIXED_TEXT, add_special_tokens=False)
    pieces = [token_bytes(tokenizer).piece(i) for i in ids]
    assert b"".join(piece.raw for piece in pieces) == MIXED_TEXT.encode()
    assert any(not _is_utf8(piece.raw) for piece in pieces)
    # Whole characters read as the tokenizer decodes them; a part of one as its escaped bytes.
    for token_id, piece in zip(ids, pieces, strict=True):
        expected = tokenizer.decode([token_id]) if _is_utf8(piece.raw) else piece.raw.decode(errors="backslashreplace")
        assert piece.text == expected
    eos = token_bytes(tokenizer).piece(tokenizer.eos_token_id)
    assert (eos.text, eos.raw) == ("</s>", b"</s>")
    assert token_bytes(tokenizer) is token_bytes(tokenizer)  # one table per tokenizer


def _sentencepiece_byte_fallback_tokenizer() -> PreTrainedTokenizerFast:
    """A tokenizer built like Llama 2's (SentencePiece BPE with byte fallback, ``▁`` for spaces), offline."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{byte:02X}>": 3 + byte for byte in range(256)}}
    for piece in ["▁", "h", "i", "▁h", "▁hi", "п", "р", "и", "в", "е", "т", "▁п", "▁пр"]:
        vocab[piece] = len(vocab)
    merges = [("▁", "h"), ("▁h", "i"), ("▁", "п"), ("▁п", "р")]
    backend = Tokenizer(models.BPE(vocab, merges, byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )


def test_sentencepiece_byte_fallback_token_bytes_join_into_the_text():
    tokenizer = _sentencepiece_byte_fallback_tokenizer()
    text = "hi 👋 привет"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert "<0xF0>" in tokenizer.convert_ids_to_tokens(ids)  # the emoji falls back to bytes
    pieces = [token_bytes(tokenizer).piece(i) for i in ids]
    # SentencePiece's "▁" before the first word is a space in that token's bytes (decode strips it from the text).
    assert b"".join(piece.raw for piece in pieces) == b" " + text.encode()
    assert [piece.text for piece in pieces][:6] == [" hi", " ", "\\xf0", "\\x9f", "\\x91", "\\x8b"]
    assert token_bytes(tokenizer).piece(tokenizer.eos_token_id).raw == b"</s>"
