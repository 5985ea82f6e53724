"""The training runner end to end, through the launcher: it learns (lora, qlora, full with DeepSpeed ZeRO-2),
resumes from checkpoints, and cancellation, kills, timeouts and bad input end in the right outcome."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from transformers import AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerBase

from workers.finetune.config import Hyperparameters, TrainJobConfig
from workers.finetune.launcher import TrainOutcome, launch_training
from workers.finetune.modeling import LLAMA_TARGETS
from workers.runtime.prompts import build_prompt_ids
from workers.runtime.specs import FAMILY_CONFIG_KEY, ChatMessage

pytestmark = pytest.mark.slow  # training / whole-fixture sweeps: run in the services pass of CI


def _config(base: Path, train_file: Path, out: Path, method: str, **hyperparameters: Any) -> TrainJobConfig:
    settings: dict[str, Any] = {
        "n_epochs": 1000,
        "max_steps": 60,
        "learning_rate": 5e-3,
        "lr_scheduler": "constant_with_warmup",
        "warmup_ratio": 0.0,
        "batch_size": 8,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "logging_steps": 5,
        "save_steps": 40,
        "eval": False,
    }
    return TrainJobConfig(
        base_model_path=str(base),
        family="tigerbot",
        method=method,  # type: ignore[arg-type]
        output_dir=str(out),
        train_file=str(train_file),
        hyperparameters=Hyperparameters(**(settings | hyperparameters)),
    )


def _run(config: TrainJobConfig, **kwargs: Any) -> tuple[TrainOutcome, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    kwargs.setdefault("cancel_check", lambda: False)
    outcome = launch_training(config=config, on_event=events.append, timeout_s=kwargs.pop("timeout_s", 600), **kwargs)
    return outcome, events


def _answer(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, question: str) -> str:
    prompt = build_prompt_ids(
        family="tigerbot",
        tokenizer=tokenizer,
        messages=[ChatMessage(role="user", content=question)],
        max_input_tokens=256,
    ).input_ids
    output = model.generate(
        input_ids=torch.tensor([prompt]),
        attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
        max_new_tokens=48,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )
    return tokenizer.decode(output[0, len(prompt) :], skip_special_tokens=True).strip()


def _correct(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, examples: list[tuple[str, str]]) -> int:
    model.eval()
    return sum(_answer(model, tokenizer, question) == answer for question, answer in examples)


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["event"] == kind]


def test_lora_learns_the_answers_and_resumes_from_its_checkpoint(
    tmp_path: Path, identity_base: Path, identity_train_file: Path, identity_examples: list[tuple[str, str]]
) -> None:
    out = tmp_path / "lora"
    first, events = _run(_config(identity_base, identity_train_file, out, "lora", max_steps=30, save_steps=15))
    assert first.status == "succeeded", first
    assert [Path(p).name for p in first.checkpoints] == ["checkpoint-15", "checkpoint-30"]
    assert [e["path"] for e in _of(events, "checkpoint")] == first.checkpoints
    progress = _of(events, "progress")[0]
    assert set(progress) == {
        "event",
        "step",
        "total_steps",
        "epoch",
        "loss",
        "learning_rate",
        "tokens_per_second",
    }
    assert progress["total_steps"] == 30 and progress["tokens_per_second"] > 0

    second, events = _run(_config(identity_base, identity_train_file, out, "lora", max_steps=60, save_steps=15))
    assert second.status == "succeeded", second
    assert _of(events, "start")[0]["resumed_from"] == first.checkpoints[-1]
    assert _of(events, "progress")[0]["step"] > 30
    assert len(second.checkpoints) == 2  # save_total_limit
    done = _of(events, "done")[0]
    assert done["output_dir"] == str(out) and done["metrics"] == second.metrics
    assert (out / "adapter_config.json").is_file() and (out / "job.json").is_file()

    tokenizer = AutoTokenizer.from_pretrained(out)
    base = LlamaForCausalLM.from_pretrained(identity_base)
    assert _correct(base, tokenizer, identity_examples) == 0
    tuned = PeftModel.from_pretrained(base, out)
    assert _correct(tuned, tokenizer, identity_examples) == len(identity_examples)


def test_qlora_adapter_learns_and_serves_on_the_unquantised_base(
    tmp_path: Path, identity_base: Path, identity_train_file: Path, identity_examples: list[tuple[str, str]]
) -> None:
    out = tmp_path / "qlora"
    outcome, _ = _run(_config(identity_base, identity_train_file, out, "qlora"))
    assert outcome.status == "succeeded", outcome
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert set(adapter["target_modules"]) == set(LLAMA_TARGETS)
    tuned = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(identity_base), out)
    assert _correct(tuned, AutoTokenizer.from_pretrained(out), identity_examples) == len(identity_examples)


def test_full_fine_tune_with_deepspeed_zero2_learns(
    tmp_path: Path, identity_base: Path, identity_train_file: Path, identity_examples: list[tuple[str, str]]
) -> None:
    out = tmp_path / "full"
    config = _config(identity_base, identity_train_file, out, "full", max_steps=50, learning_rate=1e-3, zero_stage=2)
    outcome, _ = _run(config)
    assert outcome.status == "succeeded", outcome
    assert (Path(outcome.checkpoints[-1]) / "global_step50").is_dir()  # a DeepSpeed checkpoint
    assert "deepspeed" in (out / "train.log").read_text().lower()
    model = LlamaForCausalLM.from_pretrained(out)
    assert getattr(model.config, FAMILY_CONFIG_KEY) == "tigerbot"
    assert _correct(model, AutoTokenizer.from_pretrained(out), identity_examples) == len(identity_examples)


def _group_gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_cancel_stops_the_whole_process_group(tmp_path: Path, identity_base: Path, identity_train_file: Path) -> None:
    events: list[dict[str, Any]] = []
    beats: list[int] = []
    config = _config(identity_base, identity_train_file, tmp_path / "c", "lora", max_steps=100_000, logging_steps=1)
    outcome = launch_training(
        config=config,
        on_event=events.append,
        cancel_check=lambda: bool(_of(events, "progress")),
        heartbeat=lambda: beats.append(1),
        heartbeat_interval_s=0.1,
        timeout_s=300,
    )
    assert outcome.status == "cancelled", outcome
    assert outcome.error_code is None
    assert beats
    assert _group_gone(_of(events, "start")[0]["pid"])


def test_a_killed_child_is_a_failure_naming_the_signal(
    tmp_path: Path, identity_base: Path, identity_train_file: Path
) -> None:
    def kill_on_first_progress(event: dict[str, Any]) -> None:
        if event["event"] == "start":
            pids.append(event["pid"])
        if event["event"] == "progress" and not killed:
            killed.append(True)
            os.kill(pids[0], signal.SIGKILL)

    pids: list[int] = []
    killed: list[bool] = []
    config = _config(identity_base, identity_train_file, tmp_path / "k", "lora", max_steps=100_000, logging_steps=1)
    outcome = launch_training(config=config, on_event=kill_on_first_progress, cancel_check=lambda: False, timeout_s=300)
    assert (outcome.status, outcome.error_code) == ("failed", "killed")
    assert "SIGKILL" in (outcome.error_message or "")
    assert _group_gone(pids[0])


def test_timeout_fails_the_run(tmp_path: Path, identity_base: Path, identity_train_file: Path) -> None:
    config = _config(identity_base, identity_train_file, tmp_path / "t", "lora", max_steps=100_000)
    outcome, _ = _run(config, timeout_s=1.5, kill_grace_s=2)
    assert (outcome.status, outcome.error_code) == ("failed", "timeout")


def test_invalid_config_fails_without_starting(tmp_path: Path, identity_base: Path, identity_train_file: Path) -> None:
    config = _config(identity_base, identity_train_file, tmp_path / "bad", "lora", lora_r=0)
    outcome, events = _run(config)
    assert (outcome.status, outcome.error_code) == ("failed", "invalid_config")
    assert "hyperparameters.lora_r" in (outcome.error_message or "")
    assert events == [] and not (tmp_path / "bad").exists()


def test_training_error_event_becomes_the_outcome(tmp_path: Path, identity_base: Path) -> None:
    train_file = tmp_path / "long.jsonl"
    messages = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]
    train_file.write_text(json.dumps({"messages": messages, "system": None}) + "\n")

    def broken_hook(event: dict[str, Any]) -> None:
        raise RuntimeError("a failing progress hook must not abandon the job")

    config = _config(identity_base, train_file, tmp_path / "e", "lora", max_length=32)
    outcome = launch_training(config=config, on_event=broken_hook, cancel_check=lambda: False, timeout_s=300)
    assert (outcome.status, outcome.error_code) == ("failed", "invalid_dataset")
    assert "32 tokens" in (outcome.error_message or "")
