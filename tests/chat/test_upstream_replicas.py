"""Replicas, retries and vLLM LoRA adapters of an upstream model, against fake vLLM servers (vLLM itself needs a
GPU; see fake_vllm.py) and ports where nothing listens."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from apps.chat.runtime_errors import to_domain_error
from apps.core.errors import status_of
from tests.chat.fake_vllm import BASE_MODEL, FakeVLLM, answer
from workers.runtime import engine, upstream_lora
from workers.runtime.errors import UpstreamError
from workers.runtime.replicas import ReplicaHealth, replica_health
from workers.runtime.specs import ChatMessage, GenerationRequest, ModelSpec, SamplingParams
from workers.runtime.upstream_adapters import AdapterLoadError
from workers.runtime.upstream_http import UpstreamUnavailableError

HI = [ChatMessage(role="user", content="Hi there")]
PARAMS = SamplingParams(temperature=0)


def hi(spec: ModelSpec) -> GenerationRequest:
    return GenerationRequest(spec=spec, messages=HI, params=PARAMS)


def dead_url() -> str:
    """A base URL where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def spec_for(*urls: str, **overrides: Any) -> ModelSpec:
    options: dict[str, Any] = {
        "name": "smol",
        "family": "hf-template",
        "backend": "openai-upstream",
        "base_url": urls[0],
        "replica_urls": urls[1:],
        "upstream_model": BASE_MODEL,
    }
    return ModelSpec(**{**options, **overrides})


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def vllm() -> Iterator[FakeVLLM]:
    with FakeVLLM() as server:
        yield server


@pytest.fixture
def vllm2() -> Iterator[FakeVLLM]:
    with FakeVLLM() as server:
        yield server


# --- Choosing replicas ----------------------------------------------------------------------------------


def test_replicas_and_serve_url_survive_the_trip_to_a_worker() -> None:
    spec = ModelSpec(
        name="m",
        family="hf-template",
        path="/models/m",
        serve_url="http://vllm:8000/v1",
        replica_urls=("http://vllm-2:8000/v1",),
    )
    again = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and hash(again) == hash(spec)


def test_healthy_replicas_take_turns_and_down_ones_come_last_least_recently_failed_first() -> None:
    now = [100.0]
    health = ReplicaHealth(cool_off_s=30, clock=lambda: now[0])
    urls = ["a", "b", "c"]
    assert [health.order(urls) for _ in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]
    health.mark_failed("b")
    now[0] += 1
    health.mark_failed("a")
    assert health.order(urls) == ["c", "b", "a"]
    health.mark_up("b")
    assert health.order(urls)[-1] == "a" and health.is_down("a") and not health.is_down("b")


def test_a_down_replica_is_probed_after_its_cool_off_and_comes_back_when_it_answers() -> None:
    now = [0.0]
    health = ReplicaHealth(cool_off_s=10, clock=lambda: now[0])
    answers = {"a": False}
    probed: list[str] = []

    def probe(url: str) -> bool:
        probed.append(url)
        return answers[url]

    health.mark_failed("a")
    health.order(["a", "b"], probe=probe)
    assert probed == []  # still cooling off
    now[0] = 11
    health.order(["a", "b"], probe=probe)
    wait_for(lambda: probed == ["a"])
    wait_for(lambda: not health._down["a"].probing)
    assert health.is_down("a")  # the probe failed: another cool-off
    health.order(["a", "b"], probe=probe)
    assert probed == ["a"]
    answers["a"], now[0] = True, 22
    assert health.order(["a", "b"], probe=probe)[-1] == "a"  # the probe runs in the background
    wait_for(lambda: not health.is_down("a"))
    assert probed == ["a", "a"]


# --- Failover and retries -------------------------------------------------------------------------------


def test_a_refused_replica_fails_over_to_the_live_one_and_is_skipped_afterwards(vllm: FakeVLLM) -> None:
    dead = dead_url()
    spec = spec_for(dead, vllm.url)
    for _ in range(3):
        assert engine.generate(request=hi(spec)).text == answer(BASE_MODEL, "Hi there")
    assert replica_health.is_down(dead)
    chunks = list(engine.stream(request=hi(spec)))
    assert chunks[-1].result is not None and chunks[-1].result.text == answer(BASE_MODEL, "Hi there")
    assert len(vllm.chat_calls()) == 4


def test_a_replica_that_resets_connections_is_not_asked_again_during_its_cool_off(
    vllm: FakeVLLM, vllm2: FakeVLLM
) -> None:
    vllm.drop_all = True
    spec = spec_for(vllm.url, vllm2.url)
    for _ in range(5):
        assert engine.generate(request=hi(spec)).text == answer(BASE_MODEL, "Hi there")
    assert len(vllm.chat_calls()) == 1
    assert len(vllm2.chat_calls()) == 5


def test_healthy_replicas_share_the_requests(vllm: FakeVLLM, vllm2: FakeVLLM) -> None:
    spec = spec_for(vllm.url, vllm2.url)
    for _ in range(4):
        engine.generate(request=hi(spec))
    assert (len(vllm.chat_calls()), len(vllm2.chat_calls())) == (2, 2)


def test_a_lone_replica_is_retried_after_a_connection_error(vllm: FakeVLLM) -> None:
    spec = spec_for(vllm.url)
    vllm.drop_next = 1
    assert engine.generate(request=hi(spec)).text == answer(BASE_MODEL, "Hi there")
    assert len(vllm.chat_calls()) == 2
    assert not replica_health.is_down(vllm.url)  # it answered the retry

    vllm.drop_next = 1
    chunks = list(engine.stream(request=hi(spec)))
    assert "".join(c.delta for c in chunks) == answer(BASE_MODEL, "Hi there")
    assert len(vllm.chat_calls()) == 4


def test_a_stream_lost_before_its_first_chunk_is_retried(vllm: FakeVLLM) -> None:
    vllm.break_next_stream_after = 0  # headers sent, then a reset
    chunks = list(engine.stream(request=hi(spec_for(vllm.url))))
    assert "".join(c.delta for c in chunks) == answer(BASE_MODEL, "Hi there")
    assert len(vllm.chat_calls()) == 2


def test_a_stream_is_never_retried_once_a_chunk_was_handed_out(vllm: FakeVLLM, vllm2: FakeVLLM) -> None:
    vllm.break_next_stream_after = 2
    chunks = engine.stream(request=hi(spec_for(vllm.url, vllm2.url)))
    received = [next(chunks).delta, next(chunks).delta]
    assert "".join(received) == " ".join(answer(BASE_MODEL, "Hi there").split(" ")[:2])
    with pytest.raises(UpstreamError) as error:
        next(chunks)
    assert "broke" in error.value.message
    assert (len(vllm.chat_calls()), len(vllm2.chat_calls())) == (1, 0)


def test_when_every_replica_is_down_each_is_tried_and_the_error_says_so() -> None:
    dead, dead2 = dead_url(), dead_url()
    for _ in range(2):  # the second time both are marked down, and are tried anyway
        with pytest.raises(UpstreamUnavailableError) as error:
            engine.generate(request=hi(spec_for(dead, dead2)))
        assert "could not connect to any of the 2 upstream replicas of model 'smol'" in error.value.message
        assert dead in error.value.message and dead2 in error.value.message
    with pytest.raises(UpstreamUnavailableError) as error:
        engine.stream(request=hi(spec_for(dead)))
    assert "the upstream replica of model 'smol' after 2 attempts" in error.value.message
    api_error = to_domain_error(error.value)
    assert (status_of(api_error), api_error.code) == (502, "upstream_error")


def test_a_replica_is_health_checked_back_into_rotation(
    vllm: FakeVLLM, vllm2: FakeVLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replica_health, "cool_off_s", 0.2)
    spec = spec_for(vllm.url, vllm2.url)
    vllm.drop_all = True
    engine.generate(request=hi(spec))
    assert replica_health.is_down(vllm.url)
    vllm.drop_all = False
    time.sleep(0.3)
    engine.generate(request=hi(spec))  # starts the probe; answered by vllm2
    wait_for(lambda: not replica_health.is_down(vllm.url))
    assert vllm.calls_to("/v1/models")
    before = len(vllm.chat_calls())
    for _ in range(2):
        engine.generate(request=hi(spec))
    assert len(vllm.chat_calls()) == before + 1


def test_http_errors_are_not_retried(vllm: FakeVLLM, vllm2: FakeVLLM) -> None:
    with pytest.raises(UpstreamError) as error:
        engine.generate(request=hi(spec_for(vllm.url, vllm2.url, upstream_model="nope")))
    assert error.value.status == 404 and "does not exist" in error.value.message
    assert len(vllm.chat_calls()) + len(vllm2.chat_calls()) == 1
    assert not replica_health.is_down(vllm.url)


# --- vLLM LoRA adapters ---------------------------------------------------------------------------------


@pytest.fixture
def adapter_dir(tmp_path: Any) -> Any:
    # vLLM only needs to find the directory here; chat answers come from the fake.
    path = tmp_path / "finetunes" / "ftjob-1" / "output"
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4}')
    return path


def lora_spec(*urls: str, adapter_path: str) -> ModelSpec:
    return spec_for(*urls, name="ft:smol:me:1", upstream_model="ft:smol:me:1", adapter_path=adapter_path)


def test_an_adapter_the_replica_does_not_have_is_loaded_and_the_request_sent_again(
    vllm: FakeVLLM, adapter_dir: Any
) -> None:
    spec = lora_spec(vllm.url, adapter_path=str(adapter_dir))
    assert engine.generate(request=hi(spec)).text == answer("ft:smol:me:1", "Hi there")
    assert vllm.loras == {"ft:smol:me:1": str(adapter_dir)}
    assert [c.path for c in vllm.calls] == ["/v1/chat/completions", "/v1/load_lora_adapter", "/v1/chat/completions"]
    vllm.restart()
    chunks = list(engine.stream(request=hi(spec)))
    assert "".join(c.delta for c in chunks) == answer("ft:smol:me:1", "Hi there")
    assert len(vllm.calls_to("/v1/load_lora_adapter")) == 2


def test_an_adapter_vllm_cannot_read_is_a_clear_error(vllm: FakeVLLM, tmp_path: Any) -> None:
    spec = lora_spec(vllm.url, adapter_path=str(tmp_path / "missing"))
    with pytest.raises(AdapterLoadError) as error:
        engine.generate(request=hi(spec))
    assert error.value.status == 404 and "No adapter found" in error.value.message
    vllm.runtime_lora = False
    with pytest.raises(AdapterLoadError) as error:
        upstream_lora.load_everywhere(spec=spec)
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in error.value.message


def test_adapters_are_loaded_on_every_reachable_replica_and_unloaded_again(
    vllm: FakeVLLM, vllm2: FakeVLLM, adapter_dir: Any
) -> None:
    dead = dead_url()
    spec = lora_spec(vllm.url, dead, vllm2.url, adapter_path=str(adapter_dir))
    assert upstream_lora.load_everywhere(spec=spec) == [vllm.url, vllm2.url]
    assert upstream_lora.load_everywhere(spec=spec) == [vllm.url, vllm2.url]  # already loaded is fine
    assert vllm.loras == vllm2.loras == {"ft:smol:me:1": str(adapter_dir)}
    assert replica_health.is_down(dead)
    failures = upstream_lora.unload_everywhere(spec=spec)
    assert len(failures) == 1 and dead in failures[0]
    assert vllm.loras == vllm2.loras == {}
    assert upstream_lora.unload_everywhere(spec=lora_spec(vllm.url, adapter_path=str(adapter_dir))) == []

    with pytest.raises(UpstreamUnavailableError):
        upstream_lora.load_everywhere(spec=lora_spec(dead, adapter_path=str(adapter_dir)))


def test_a_replica_that_refuses_an_adapter_rolls_the_others_back(
    vllm: FakeVLLM, vllm2: FakeVLLM, adapter_dir: Any
) -> None:
    vllm2.runtime_lora = False
    with pytest.raises(AdapterLoadError):
        upstream_lora.load_everywhere(spec=lora_spec(vllm.url, vllm2.url, adapter_path=str(adapter_dir)))
    assert vllm.loras == {}
    assert [c.path for c in vllm.calls] == ["/v1/load_lora_adapter", "/v1/unload_lora_adapter"]
