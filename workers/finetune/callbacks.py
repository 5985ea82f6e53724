"""A TrainerCallback that reports training as JSON-lines events (see events.py)."""

from __future__ import annotations

import os
import time
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from workers.finetune.events import CHECKPOINT, EVAL, PROGRESS, EventWriter


class EventCallback(TrainerCallback):
    def __init__(self, events: EventWriter) -> None:
        self._events = events
        self._last_time = time.monotonic()
        self._last_tokens = 0

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._last_time = time.monotonic()
        self._last_tokens = state.num_input_tokens_seen

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        now, tokens = time.monotonic(), state.num_input_tokens_seen
        rate = (tokens - self._last_tokens) / max(now - self._last_time, 1e-6)
        self._last_time, self._last_tokens = now, tokens
        self._events.emit(
            PROGRESS,
            step=state.global_step,
            total_steps=state.max_steps,
            epoch=round(state.epoch or 0.0, 4),
            loss=float(logs["loss"]),
            learning_rate=float(logs.get("learning_rate", 0.0)),
            tokens_per_second=round(rate, 1),
        )

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if state.is_world_process_zero and metrics and "eval_loss" in metrics:
            self._events.emit(EVAL, step=state.global_step, eval_loss=float(metrics["eval_loss"]))

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            if args.output_dir is None:
                raise ValueError("the trainer saves checkpoints only with TrainingArguments.output_dir set")
            path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            self._events.emit(CHECKPOINT, path=path, step=state.global_step)
