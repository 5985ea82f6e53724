"""One fine-tuning run inside the training process: data, model, HF Trainer, checkpoints, final artefacts."""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from transformers import Trainer, TrainingArguments, set_seed

from workers.finetune.callbacks import EventCallback
from workers.finetune.checkpoints import last_checkpoint
from workers.finetune.config import TrainJobConfig
from workers.finetune.data import PadCollator, load_examples
from workers.finetune.deepspeed_config import build_deepspeed_config
from workers.finetune.events import START, EventWriter
from workers.finetune.modeling import load_model, load_tokenizer


class TrainingError(Exception):
    """A failure with a known cause; ``code`` goes into the error event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _training_arguments(
    *, config: TrainJobConfig, bf16: bool, on_cpu: bool, num_parameters: int, has_eval: bool
) -> TrainingArguments:
    hp = config.hyperparameters
    save = {"save_strategy": "steps", "save_steps": hp.save_steps} if hp.save_steps else {"save_strategy": "epoch"}
    if not has_eval:
        evaluation: dict[str, Any] = {"eval_strategy": "no"}
    elif hp.eval_steps:
        evaluation = {"eval_strategy": "steps", "eval_steps": hp.eval_steps}
    else:
        evaluation = {"eval_strategy": "epoch"}
    return TrainingArguments(
        output_dir=config.output_dir,
        num_train_epochs=hp.n_epochs,
        max_steps=hp.max_steps or -1,
        per_device_train_batch_size=hp.batch_size,
        per_device_eval_batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        learning_rate=hp.resolved_learning_rate(config.method),
        lr_scheduler_type=hp.lr_scheduler,
        warmup_steps=hp.warmup_ratio,
        weight_decay=hp.weight_decay,
        adam_beta1=hp.adam_beta1,
        adam_beta2=hp.resolved_adam_beta2(num_parameters),
        max_grad_norm=hp.max_grad_norm,
        logging_steps=hp.logging_steps,
        save_total_limit=hp.save_total_limit,
        seed=hp.seed,
        data_seed=hp.seed,
        bf16=bf16,
        use_cpu=on_cpu,
        deepspeed=build_deepspeed_config(config=config, bf16=bf16, on_cpu=on_cpu) if config.method == "full" else None,
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        **save,
        **evaluation,
    )


def run_training(*, config: TrainJobConfig, events: EventWriter, local_rank: int) -> dict[str, float]:
    """Train, save the adapter (lora/qlora) or full weights plus tokenizer into ``output_dir``; returns the
    final metrics."""
    hp = config.hyperparameters
    set_seed(hp.seed)
    on_cpu = not torch.cuda.is_available()
    bf16 = not on_cpu and torch.cuda.is_bf16_supported()
    try:
        tokenizer = load_tokenizer(config.base_model_path)
    except (OSError, ValueError) as exc:
        raise TrainingError("model_load_failed", f"tokenizer: {exc}") from exc
    train_set, skipped = load_examples(
        path=config.train_file, family=config.family, tokenizer=tokenizer, max_length=hp.max_length
    )
    if not len(train_set):
        raise TrainingError("invalid_dataset", f"no training example has an answer within {hp.max_length} tokens")
    eval_set = None
    if config.validation_file and hp.eval:
        eval_set, _ = load_examples(
            path=config.validation_file, family=config.family, tokenizer=tokenizer, max_length=hp.max_length
        )
        eval_set = eval_set if len(eval_set) else None
    try:
        model = load_model(config=config, bf16=bf16, device_index=None if on_cpu else local_rank)
    except (OSError, ValueError) as exc:
        raise TrainingError("model_load_failed", str(exc)) from exc
    num_parameters = sum(parameter.numel() for parameter in model.parameters())
    args = _training_arguments(
        config=config, bf16=bf16, on_cpu=on_cpu, num_parameters=num_parameters, has_eval=eval_set is not None
    )
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=PadCollator(tokenizer.pad_token_id),
        train_dataset=train_set,
        eval_dataset=eval_set,
        callbacks=[EventCallback(events)],
    )
    resume_from = last_checkpoint(config.output_dir) if config.resume else None
    batches = math.ceil(len(train_set) / (hp.batch_size * args.world_size))
    steps_per_epoch = max(batches // hp.gradient_accumulation_steps, 1)
    events.emit(
        START,
        train_examples=len(train_set),
        skipped_examples=skipped,
        validation_examples=len(eval_set) if eval_set is not None else 0,
        total_steps=hp.max_steps or math.ceil(steps_per_epoch * hp.n_epochs),
        resumed_from=resume_from,
        pid=os.getpid(),
    )
    metrics: dict[str, float] = dict(trainer.train(resume_from_checkpoint=resume_from).metrics)
    if eval_set is not None:
        metrics |= trainer.evaluate()
    trainer.save_model(config.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(config.output_dir)
        trainer.save_state()
    return {key: float(value) for key, value in metrics.items() if isinstance(value, int | float)}
