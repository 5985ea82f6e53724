"""Fine-tuning throughput of a platform job ÷ a bare Hugging Face Trainer script, same model, data, settings.

The job side is what a ``train`` worker runs: the prepared dataset, ``launch_training`` (a child process with
the event callback, heartbeats and cancellation polling). The bare side is a plain script: tokenise, wrap the
model in LoRA, ``Trainer.train()``. Both run in a fresh process and report the Trainer's own
``train_samples_per_second`` (the training phase, without interpreter start-up and model loading, which are the
same for both); the end-to-end wall time of each is printed too. Goal: ratio ≥ 0.95.

    python bench/finetune.py [--steps 20] [--examples 160] [--hidden 128] [--layers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, make_bench_model

sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "fixtures" / "instruct" / "alpaca_en_demo.json"


def _bare(config_path: str) -> None:
    """The bare script: no platform code but the prompt format, so the token counts match the job's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from workers.finetune.prepare import read_conversations
    from workers.runtime.prompts import IGNORE_INDEX, build_training_example

    config = json.loads(Path(config_path).read_text())
    hp = config["hyperparameters"]
    tokenizer = AutoTokenizer.from_pretrained(config["base_model_path"])
    examples = []
    for conversation in read_conversations(config["train_file"]):
        example = build_training_example(
            family=config["family"],
            tokenizer=tokenizer,
            messages=conversation.chat_messages(),
            max_length=hp["max_length"],
        )
        examples.append({"input_ids": example.input_ids, "labels": example.labels})

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(item["input_ids"]) for item in batch)
        pad = tokenizer.pad_token_id
        return {
            "input_ids": torch.tensor([i["input_ids"] + [pad] * (width - len(i["input_ids"])) for i in batch]),
            "labels": torch.tensor([i["labels"] + [IGNORE_INDEX] * (width - len(i["labels"])) for i in batch]),
            "attention_mask": torch.tensor(
                [[1] * len(i["input_ids"]) + [0] * (width - len(i["input_ids"])) for i in batch]
            ),
        }

    model = AutoModelForCausalLM.from_pretrained(config["base_model_path"], dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=hp["lora_r"],
            lora_alpha=hp["lora_alpha"],
            lora_dropout=hp["lora_dropout"],
            bias="none",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        max_steps=hp["max_steps"],
        per_device_train_batch_size=hp["batch_size"],
        learning_rate=hp["learning_rate"],
        lr_scheduler_type=hp["lr_scheduler"],
        warmup_steps=hp["warmup_ratio"],
        logging_steps=hp["logging_steps"],
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=hp["seed"],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    metrics = Trainer(model=model, args=args, train_dataset=examples, data_collator=collate).train().metrics
    print(json.dumps({"train_samples_per_second": metrics["train_samples_per_second"]}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--examples", type=int, default=160)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    if args.bare:
        _bare(args.bare)
        return

    from workers.finetune.config import Hyperparameters, TrainJobConfig
    from workers.finetune.launcher import launch_training
    from workers.finetune.prepare import prepare_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-ft-"))
    records = json.loads(DATA.read_text())[: args.examples]
    source = work / "data.jsonl"
    source.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records))
    texts = [f"{r['instruction']} {r['input']} {r['output']}" for r in records]
    base = make_bench_model(work / "base", hidden=args.hidden, layers=args.layers, corpus_texts=texts)
    report = prepare_dataset(
        path=source,
        out_dir=work / "prepared",
        max_length=512,
        tokenizer_path=base,
        family="tigerbot",
        validation_fraction=0,
    )
    hyperparameters = Hyperparameters(
        max_steps=args.steps,
        n_epochs=1000,
        batch_size=8,
        learning_rate=2e-4,
        lr_scheduler="cosine",
        warmup_ratio=0.0,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.05,
        logging_steps=5,
        save_steps=10**6,
        eval=False,
        max_length=512,
    )
    config = TrainJobConfig(
        base_model_path=str(base),
        family="tigerbot",
        method="lora",
        output_dir=str(work / "job"),
        train_file=report.train_path,
        hyperparameters=hyperparameters,
        resume=False,
    )
    config_path = config.write(work / "bare.json")

    start = time.perf_counter()
    outcome = launch_training(config=config, on_event=lambda event: None, cancel_check=lambda: False)
    job_wall = time.perf_counter() - start
    assert outcome.status == "succeeded", outcome
    start = time.perf_counter()
    bare = subprocess.run(
        [sys.executable, __file__, "--bare", str(config_path)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    bare_wall = time.perf_counter() - start
    bare_rate = json.loads(bare.stdout.strip().splitlines()[-1])["train_samples_per_second"]
    job_rate = outcome.metrics["train_samples_per_second"]
    print(
        f"{report.train_count} examples, {args.steps} steps of 8, tiny Llama hidden={args.hidden} layers={args.layers}"
    )
    print(
        f"job  {job_rate:.2f} samples/s (wall {job_wall:.1f} s)   bare Trainer {bare_rate:.2f} samples/s "
        f"(wall {bare_wall:.1f} s)   ratio {job_rate / bare_rate:.3f}  (goal >= 0.95)"
    )


if __name__ == "__main__":
    main()
