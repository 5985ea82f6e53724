"""The DeepSpeed config for ``full`` fine-tuning, generated from the job (handed to the HF Trainer).

Values the job fixes are written out; ``"auto"`` is left only where the Trainer knows better at run time: the
global batch (it depends on the number of processes) and the reduce/prefetch bucket sizes (derived from the
model's hidden size). The optimizer is the Trainer's own torch AdamW (DeepSpeed's fused Adam needs compiled
CUDA ops), hence ``zero_allow_untested_optimizer``. Communication overlap is off on CPU, where there is no
separate stream.
"""

from __future__ import annotations

from typing import Any

from workers.finetune.config import TrainJobConfig


def build_deepspeed_config(*, config: TrainJobConfig, bf16: bool, on_cpu: bool) -> dict[str, Any]:
    hp = config.hyperparameters
    zero: dict[str, Any] = {
        "stage": hp.zero_stage,
        "overlap_comm": not on_cpu,
        "contiguous_gradients": True,
        "reduce_bucket_size": "auto",
    }
    if hp.zero_stage == 3:
        zero |= {
            "stage3_prefetch_bucket_size": "auto",
            "stage3_param_persistence_threshold": "auto",
            # Without this, save_model under ZeRO-3 writes empty shards instead of the gathered weights.
            "stage3_gather_16bit_weights_on_model_save": True,
        }
    return {
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": hp.batch_size,
        "gradient_accumulation_steps": hp.gradient_accumulation_steps,
        "gradient_clipping": hp.max_grad_norm,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": bf16},
        "fp16": {"enabled": False},
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
    }
