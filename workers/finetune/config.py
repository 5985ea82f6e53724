"""The training job description that crosses Celery and is written to disk for the training process.

Defaults, and the rules for values left as None:

* ``learning_rate``: 2e-4 for ``lora``/``qlora`` (only the small adapter matrices move, so they need a large
  step) and 2e-5 for ``full`` (every weight moves; larger steps wreck the pretrained model).
* ``adam_beta2``: 0.95 for models with at least ``LARGE_MODEL_PARAMETERS`` (1B) parameters, 0.999 otherwise.
  Large models see rare-token gradient spikes that a long second-moment memory (0.999) reacts to too slowly,
  which is why Llama/TigerBot-scale recipes train with 0.95; small models keep the AdamW default.
* the learning-rate schedule is ``lr_scheduler`` (cosine by default) after a linear warm-up over
  ``warmup_ratio`` of the steps.
* ``save_steps``/``eval_steps`` None means once per epoch; ``max_steps`` None means ``n_epochs`` full epochs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from workers.runtime.checkpoints import is_gguf
from workers.runtime.specs import FAMILIES, Family
from workers.serialization import DictSerializable

Method = Literal["qlora", "lora", "full"]
Scheduler = Literal["cosine", "linear", "constant_with_warmup"]

METHODS: tuple[str, ...] = get_args(Method)
LARGE_MODEL_PARAMETERS = 1_000_000_000
DEFAULT_LORA_LEARNING_RATE = 2e-4
DEFAULT_FULL_LEARNING_RATE = 2e-5
_REQUIRED = ("base_model_path", "family", "method", "output_dir", "train_file")


class ConfigError(ValueError):
    """A job setting is missing or out of range; ``field`` names it, e.g. ``hyperparameters.lora_r``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class Hyperparameters:
    n_epochs: float = 3
    learning_rate: float | None = None
    lr_scheduler: Scheduler = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float | None = None
    max_grad_norm: float = 1.0
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_length: int = 1024
    max_steps: int | None = None
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    seed: int = 0
    save_steps: int | None = None
    save_total_limit: int = 2
    eval: bool = True
    eval_steps: int | None = None
    logging_steps: int = 1
    gradient_checkpointing: bool = False
    zero_stage: Literal[2, 3] = 2

    def validate(self, method: Method) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("n_epochs", self.n_epochs > 0, "must be > 0"),
            ("learning_rate", self.learning_rate is None or 0 < self.learning_rate < 1, "must be in (0, 1)"),
            (
                "lr_scheduler",
                self.lr_scheduler in get_args(Scheduler),
                f"must be one of {get_args(Scheduler)}",
            ),
            ("warmup_ratio", 0 <= self.warmup_ratio < 1, "must be in [0, 1)"),
            ("weight_decay", 0 <= self.weight_decay < 1, "must be in [0, 1)"),
            ("adam_beta1", 0 <= self.adam_beta1 < 1, "must be in [0, 1)"),
            ("adam_beta2", self.adam_beta2 is None or 0 < self.adam_beta2 < 1, "must be in (0, 1)"),
            ("max_grad_norm", self.max_grad_norm > 0, "must be > 0"),
            ("batch_size", 1 <= self.batch_size <= 1024, "must be in [1, 1024]"),
            (
                "gradient_accumulation_steps",
                1 <= self.gradient_accumulation_steps <= 1024,
                "must be in [1, 1024]",
            ),
            ("max_length", 16 <= self.max_length <= 131072, "must be in [16, 131072]"),
            ("max_steps", self.max_steps is None or self.max_steps >= 1, "must be >= 1"),
            ("lora_r", method == "full" or 1 <= self.lora_r <= 1024, "must be in [1, 1024]"),
            ("lora_alpha", method == "full" or self.lora_alpha > 0, "must be > 0"),
            ("lora_dropout", 0 <= self.lora_dropout < 1, "must be in [0, 1)"),
            ("seed", 0 <= self.seed < 2**32, "must be in [0, 2**32)"),
            ("save_steps", self.save_steps is None or self.save_steps >= 1, "must be >= 1"),
            ("save_total_limit", self.save_total_limit >= 1, "must be >= 1"),
            ("eval_steps", self.eval_steps is None or self.eval_steps >= 1, "must be >= 1"),
            ("logging_steps", self.logging_steps >= 1, "must be >= 1"),
            ("zero_stage", self.zero_stage in (2, 3), "must be 2 or 3"),
        ]
        for name, ok, message in checks:
            value = getattr(self, name)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise ConfigError(f"hyperparameters.{name}", f"{message}, got {value!r}")

    def resolved_learning_rate(self, method: Method) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_FULL_LEARNING_RATE if method == "full" else DEFAULT_LORA_LEARNING_RATE

    def resolved_adam_beta2(self, num_parameters: int) -> float:
        if self.adam_beta2 is not None:
            return self.adam_beta2
        return 0.95 if num_parameters >= LARGE_MODEL_PARAMETERS else 0.999


@dataclass
class TrainJobConfig(DictSerializable):
    """One fine-tuning run. ``resume`` continues from the newest checkpoint in ``output_dir`` if there is one;
    ``nproc_per_node`` > 1 runs data-parallel over that many local GPUs."""

    base_model_path: str
    family: Family
    method: Method
    output_dir: str
    train_file: str
    validation_file: str | None = None
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    resume: bool = True
    nproc_per_node: int = 1

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field."""
        if self.method not in METHODS:
            raise ConfigError("method", f"must be one of {METHODS}, got {self.method!r}")
        if self.family not in FAMILIES:
            raise ConfigError("family", f"must be one of {FAMILIES}, got {self.family!r}")
        for name in ("base_model_path", "output_dir", "train_file"):
            if not getattr(self, name):
                raise ConfigError(name, "is required")
        if is_gguf(self.base_model_path):
            if not Path(self.base_model_path).is_file():
                raise ConfigError("base_model_path", f"GGUF file not found: {self.base_model_path}")
        elif not (Path(self.base_model_path) / "config.json").is_file():
            raise ConfigError("base_model_path", f"no model checkpoint (config.json) at {self.base_model_path}")
        for name in ("train_file", "validation_file"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ConfigError(name, f"file not found: {path}")
        if not 1 <= self.nproc_per_node <= 64:
            raise ConfigError("nproc_per_node", f"must be in [1, 64], got {self.nproc_per_node!r}")
        self.hyperparameters.validate(self.method)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainJobConfig:
        """Build from a dict, rejecting unknown keys (a typo must not silently fall back to a default)."""
        known = {f.name for f in fields(cls)}
        known_hp = {f.name for f in fields(Hyperparameters)}
        hyperparameters = dict(data.get("hyperparameters") or {})
        for key in data:
            if key not in known:
                raise ConfigError(key, "unknown setting")
        for key in hyperparameters:
            if key not in known_hp:
                raise ConfigError(f"hyperparameters.{key}", "unknown setting")
        missing = [f.name for f in fields(cls) if f.name not in data and f.name in _REQUIRED]
        if missing:
            raise ConfigError(missing[0], "is required")
        return cls(**{**data, "hyperparameters": Hyperparameters(**hyperparameters)})

    def write(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return target

    @classmethod
    def read(cls, path: str | Path) -> TrainJobConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
