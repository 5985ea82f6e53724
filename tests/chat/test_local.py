"""In-process generation with real tiny checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.chat.conftest import GREETING, GREETING_ANSWER, local_spec
from workers.runtime.errors import InputTooLongError, ModelLoadError
from workers.runtime.local import LocalRuntime
from workers.runtime.specs import ChatMessage, Family, GenerationRequest, ModelSpec, SamplingParams

GREEDY = SamplingParams(temperature=0)
HELLO = [ChatMessage(role="user", content="Tell me something.")]


def greedy_request(spec: ModelSpec, messages: Sequence[ChatMessage] = HELLO) -> GenerationRequest:
    return GenerationRequest(spec=spec, messages=messages, params=GREEDY)


def test_greedy_reproduces_the_trained_answer_deterministically(runtime: LocalRuntime, chatty_model: Path) -> None:
    spec = local_spec(chatty_model)
    first = runtime.generate(request=greedy_request(spec, [GREETING]))
    assert first.text == GREETING_ANSWER
    assert first.finish_reason == "stop"
    assert runtime.generate(request=greedy_request(spec, [GREETING])) == first
    tokenizer = runtime.load(spec=spec).tokenizer
    # +1: the eos that ended the answer
    assert first.completion_tokens == len(tokenizer.encode(GREETING_ANSWER, add_special_tokens=False)) + 1
    prompt = "\n\n### Instruction:\n你好\n\n### Response:\n"
    assert first.prompt_tokens == 1 + len(tokenizer.encode(prompt, add_special_tokens=False))


def test_seed_makes_sampling_reproducible(runtime: LocalRuntime, tiny_models: dict[Family, Path]) -> None:
    spec = local_spec(tiny_models["tigerbot"])

    def sample(seed: int) -> str:
        return runtime.generate(
            request=GenerationRequest(spec=spec, messages=HELLO, params=SamplingParams(temperature=1.5, seed=seed))
        ).text

    assert sample(1) == sample(1)
    assert len({sample(1), sample(2), sample(3)}) > 1


def test_top_k_and_top_p_cut_the_distribution(runtime: LocalRuntime, tiny_models: dict[Family, Path]) -> None:
    spec = local_spec(tiny_models["tigerbot"])
    greedy = runtime.generate(request=greedy_request(spec)).text
    # Keeping only the most likely token makes sampling greedy, at any temperature and seed.
    for seed in (1, 2):
        top_k = SamplingParams(temperature=2.0, top_k=1, seed=seed)
        top_p = SamplingParams(temperature=2.0, top_p=1e-6, seed=seed)
        assert runtime.generate(request=GenerationRequest(spec=spec, messages=HELLO, params=top_k)).text == greedy
        assert runtime.generate(request=GenerationRequest(spec=spec, messages=HELLO, params=top_p)).text == greedy


def test_repetition_penalty_changes_a_repetitive_output(runtime: LocalRuntime, tiny_models: dict[Family, Path]) -> None:
    spec = local_spec(tiny_models["tigerbot"], max_new_tokens=30)
    greedy = runtime.generate(request=greedy_request(spec))
    penalised = runtime.generate(
        request=GenerationRequest(spec=spec, messages=HELLO, params=SamplingParams(temperature=0, repetition_penalty=5))
    )
    assert penalised.text != greedy.text
    generated = runtime.load(spec=spec).tokenizer.encode(penalised.text, add_special_tokens=False)
    assert len(set(generated)) > len(set(runtime.load(spec=spec).tokenizer.encode(greedy.text)))


def test_max_new_tokens_ends_with_length(runtime: LocalRuntime, chatty_model: Path) -> None:
    spec = local_spec(chatty_model)
    result = runtime.generate(
        request=GenerationRequest(
            spec=spec, messages=[GREETING], params=SamplingParams(temperature=0, max_new_tokens=3)
        )
    )
    assert result.finish_reason == "length"
    assert result.completion_tokens == 3
    assert GREETING_ANSWER.startswith(result.text) and result.text


def test_spec_caps_max_new_tokens(runtime: LocalRuntime, chatty_model: Path) -> None:
    spec = local_spec(chatty_model, max_new_tokens=2)
    result = runtime.generate(
        request=GenerationRequest(
            spec=spec, messages=[GREETING], params=SamplingParams(temperature=0, max_new_tokens=50)
        )
    )
    assert (result.completion_tokens, result.finish_reason) == (2, "length")


def test_stop_sequence_ends_and_is_trimmed(runtime: LocalRuntime, chatty_model: Path) -> None:
    spec = local_spec(chatty_model)
    params = SamplingParams(temperature=0, stop=("人工", "never"))
    result = runtime.generate(request=GenerationRequest(spec=spec, messages=[GREETING], params=params))
    assert result.text == GREETING_ANSWER[: GREETING_ANSWER.index("人工")]
    assert result.finish_reason == "stop"
    chunks = list(runtime.stream(request=GenerationRequest(spec=spec, messages=[GREETING], params=params)))
    assert "".join(c.delta for c in chunks) == result.text
    assert all("人" not in c.delta for c in chunks)


def test_stream_concatenation_equals_generate(runtime: LocalRuntime, chatty_model: Path) -> None:
    spec = local_spec(chatty_model)
    chunks = list(runtime.stream(request=greedy_request(spec, [GREETING])))
    assert len(chunks) > 3
    assert [c.finished for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert "".join(c.delta for c in chunks) == GREETING_ANSWER
    assert chunks[-1].result == runtime.generate(request=greedy_request(spec, [GREETING]))


def test_closing_a_stream_early_frees_the_model(runtime: LocalRuntime, chatty_model: Path) -> None:
    spec = local_spec(chatty_model)
    chunks = runtime.stream(request=greedy_request(spec, [GREETING]))
    next(chunks)
    chunks.close()  # type: ignore[attr-defined]
    assert runtime.generate(request=greedy_request(spec, [GREETING])).text == GREETING_ANSWER


@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_quantized_load_generates_on_cpu(runtime: LocalRuntime, chatty_model: Path, quantization: str) -> None:
    import bitsandbytes as bnb

    spec = local_spec(chatty_model, quantization=quantization, max_new_tokens=4)
    result = runtime.generate(request=greedy_request(spec, [GREETING]))
    assert result.completion_tokens == 4
    layer = runtime.load(spec=spec).model.model.layers[0].self_attn.q_proj
    assert isinstance(layer, bnb.nn.Linear4bit if quantization == "4bit" else bnb.nn.Linear8bitLt)


@pytest.mark.parametrize("scaling", [{"type": "dynamic", "factor": 2.0}, {"rope_type": "yarn", "factor": 4.0}])
def test_rope_scaling_is_applied_to_the_config(
    runtime: LocalRuntime, tiny_models: dict[Family, Path], scaling: dict[str, object]
) -> None:
    spec = local_spec(tiny_models["tigerbot"], rope_scaling=scaling, max_new_tokens=2)
    assert runtime.generate(request=greedy_request(spec)).completion_tokens == 2
    rope = runtime.load(spec=spec).model.config.rope_parameters
    assert rope["rope_type"] == scaling.get("type", scaling.get("rope_type"))
    assert rope["factor"] == scaling["factor"]


def test_adapters_get_engines_of_their_own_and_leave_the_base_alone(
    tiny_models: dict[Family, Path], adapters: tuple[Path, Path]
) -> None:
    runtime = LocalRuntime(max_adapters=1)
    base_spec = local_spec(tiny_models["tigerbot"])
    spec_a, spec_b = (local_spec(tiny_models["tigerbot"], adapter_path=str(a)) for a in adapters)

    def answer(spec: object) -> str:
        return runtime.generate(request=greedy_request(spec)).text  # type: ignore[arg-type]

    base = answer(base_spec)
    out_a, out_b = answer(spec_a), answer(spec_b)
    assert len({base, out_a, out_b}) == 3
    assert answer(base_spec) == base  # merging an adapter into its copy left the base's weights untouched
    # max_adapters=1: b is the one kept; a is merged again (and answers the same) on demand.
    assert runtime.adapters_loaded(spec=base_spec) == [str(adapters[1])]
    assert answer(spec_a) == out_a
    assert runtime.adapters_loaded(spec=base_spec) == [str(adapters[0])]
    assert runtime.engine(spec=spec_a) is not runtime.engine(spec=base_spec)


def test_typed_errors(runtime: LocalRuntime, tmp_path: Path, chatty_model: Path) -> None:
    with pytest.raises(ModelLoadError):
        runtime.generate(request=greedy_request(local_spec(tmp_path / "missing")))
    with pytest.raises(ModelLoadError):
        runtime.generate(request=greedy_request(local_spec(chatty_model, adapter_path=str(tmp_path))))
    with pytest.raises(InputTooLongError):
        runtime.stream(request=greedy_request(local_spec(chatty_model, max_input_tokens=5)))
