"""The training runner's parts that need no training process: config, DeepSpeed config, LoRA targets,
checkpoints, events, batching and the outcome type."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from transformers import LlamaForCausalLM

from workers.finetune.checkpoints import last_checkpoint, list_checkpoints
from workers.finetune.config import ConfigError, Hyperparameters, TrainJobConfig
from workers.finetune.data import PadCollator
from workers.finetune.deepspeed_config import build_deepspeed_config
from workers.finetune.events import EventWriter, parse_event
from workers.finetune.launcher import TrainOutcome
from workers.finetune.modeling import LLAMA_TARGETS, lora_target_modules
from workers.runtime.tiny import make_tiny_model


def _job(tmp_path: Path, **changes: object) -> TrainJobConfig:
    base = tmp_path / "base"
    base.mkdir(exist_ok=True)
    (base / "config.json").write_text("{}")
    train = tmp_path / "train.jsonl"
    train.write_text("")
    data = {
        "base_model_path": str(base),
        "family": "tigerbot",
        "method": "lora",
        "output_dir": str(tmp_path / "out"),
        "train_file": str(train),
    }
    return TrainJobConfig.from_dict(data | changes)


def test_config_round_trips_through_a_json_file(tmp_path: Path) -> None:
    config = _job(tmp_path, hyperparameters={"lora_r": 32, "n_epochs": 2})
    config.validate()
    again = TrainJobConfig.read(config.write(tmp_path / "job.json"))
    assert again == config and again.hyperparameters.lora_r == 32


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"method": "prefix"}, "method"),
        ({"family": "gpt"}, "family"),
        ({"base_model_path": "/nowhere"}, "base_model_path"),
        ({"validation_file": "/nowhere.jsonl"}, "validation_file"),
        ({"nproc_per_node": 0}, "nproc_per_node"),
        ({"hyperparameters": {"learning_rate": 2.0}}, "hyperparameters.learning_rate"),
        ({"hyperparameters": {"learning_rate": -1e-4}}, "hyperparameters.learning_rate"),
        ({"hyperparameters": {"n_epochs": math.inf}}, "hyperparameters.n_epochs"),
        ({"hyperparameters": {"warmup_ratio": 1.0}}, "hyperparameters.warmup_ratio"),
        ({"hyperparameters": {"adam_beta2": 1.0}}, "hyperparameters.adam_beta2"),
        ({"hyperparameters": {"batch_size": 0}}, "hyperparameters.batch_size"),
        ({"hyperparameters": {"max_length": 8}}, "hyperparameters.max_length"),
        ({"hyperparameters": {"lora_r": 0}}, "hyperparameters.lora_r"),
        ({"hyperparameters": {"lora_dropout": 1.5}}, "hyperparameters.lora_dropout"),
        ({"hyperparameters": {"save_total_limit": 0}}, "hyperparameters.save_total_limit"),
        ({"hyperparameters": {"zero_stage": 1}}, "hyperparameters.zero_stage"),
        ({"hyperparameters": {"lr_scheduler": "exotic"}}, "hyperparameters.lr_scheduler"),
    ],
)
def test_out_of_range_settings_name_their_field(tmp_path: Path, changes: dict, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _job(tmp_path, **changes).validate()
    assert caught.value.field == field


def test_unknown_or_missing_keys_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _job(tmp_path, hyperparameters={"lora_rank": 8})
    assert caught.value.field == "hyperparameters.lora_rank"
    with pytest.raises(ConfigError) as caught:
        _job(tmp_path, epochs=3)
    assert caught.value.field == "epochs"
    with pytest.raises(ConfigError) as caught:
        TrainJobConfig.from_dict({"family": "tigerbot"})
    assert caught.value.field == "base_model_path"


def test_full_fine_tuning_ignores_lora_settings(tmp_path: Path) -> None:
    _job(tmp_path, method="full", hyperparameters={"lora_r": 0}).validate()


def test_learning_rate_and_beta2_rules() -> None:
    hp = Hyperparameters()
    assert (hp.resolved_learning_rate("lora"), hp.resolved_learning_rate("qlora")) == (2e-4, 2e-4)
    assert hp.resolved_learning_rate("full") == 2e-5
    assert Hyperparameters(learning_rate=1e-3).resolved_learning_rate("full") == 1e-3
    assert (hp.resolved_adam_beta2(7_000_000_000), hp.resolved_adam_beta2(125_000_000)) == (0.95, 0.999)
    assert Hyperparameters(adam_beta2=0.98).resolved_adam_beta2(7_000_000_000) == 0.98


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_config_follows_the_job(tmp_path: Path, stage: int) -> None:
    hp = {"zero_stage": stage, "batch_size": 2, "gradient_accumulation_steps": 4, "max_grad_norm": 0.5}
    config = _job(tmp_path, method="full", hyperparameters=hp)
    ds = build_deepspeed_config(config=config, bf16=True, on_cpu=False)
    assert ds["zero_optimization"]["stage"] == stage
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (2, 4)
    assert ds["gradient_clipping"] == 0.5 and ds["bf16"] == {"enabled": True}
    assert ds["zero_allow_untested_optimizer"] is True
    assert ds["zero_optimization"].get("stage3_gather_16bit_weights_on_model_save", False) == (stage == 3)
    assert build_deepspeed_config(config=config, bf16=False, on_cpu=True)["zero_optimization"]["overlap_comm"] is False
    json.dumps(ds)


def test_lora_targets_per_family_with_all_linear_fallback(tmp_path: Path) -> None:
    model = LlamaForCausalLM.from_pretrained(make_tiny_model(tmp_path / "m", family="baichuan2"))
    assert lora_target_modules(model=model, family="tigerbot") == list(LLAMA_TARGETS)
    assert lora_target_modules(model=model, family="llama2-chat") == list(LLAMA_TARGETS)
    # The tiny "baichuan2" model is a Llama: it has no fused W_pack projection.
    assert lora_target_modules(model=model, family="baichuan2") == "all-linear"


def test_list_checkpoints_orders_by_step_and_skips_unfinished(tmp_path: Path) -> None:
    for step, complete in [(100, True), (20, True), (300, False), (5, True)]:
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert [Path(p).name for p in list_checkpoints(tmp_path)] == [
        "checkpoint-5",
        "checkpoint-20",
        "checkpoint-100",
    ]
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-100")
    assert list_checkpoints(tmp_path / "missing") == [] and last_checkpoint(tmp_path / "missing") is None


def test_events_are_strict_json_lines() -> None:
    stream = io.StringIO()
    EventWriter(stream).emit("progress", loss=float("nan"), step=3, metrics={"x": float("inf")})
    EventWriter(stream, enabled=False).emit("progress", step=4)
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert json.loads(line) == {"event": "progress", "loss": None, "step": 3, "metrics": {"x": None}}
    assert parse_event(line) == json.loads(line)
    assert parse_event("DeepSpeed op built successfully\n") is None
    assert parse_event('{"no": "event"}') is None


def test_collator_pads_and_masks() -> None:
    batch = PadCollator(pad_token_id=0)(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_outcome_round_trips() -> None:
    outcome = TrainOutcome(status="failed", output_dir="/x", error_code="killed", error_message="SIGKILL")
    assert TrainOutcome.from_dict(json.loads(json.dumps(outcome.to_dict()))) == outcome
