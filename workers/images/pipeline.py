"""Local text-to-image with diffusers: any ``DiffusionPipeline`` directory (Stable Diffusion, SDXL, …), loaded
once per process, fp16 on a GPU (float32 on the CPU). Each image of a request has its own seed, so a request
with the same seed gives the same bytes."""

from __future__ import annotations

import io
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch

from workers.runtime.errors import InvalidMessagesError, ModelLoadError

logger = logging.getLogger(__name__)

OnStep = Callable[[int, int], None]
"""``(steps done, steps total)`` over all the images of a request."""

MAX_SEED = 2**32 - 1
_lock = threading.Lock()  # one generation at a time per process: a pipeline is not thread-safe


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    width: int
    height: int
    n: int = 1
    steps: int = 30
    seed: int | None = None
    negative_prompt: str | None = None
    guidance_scale: float | None = None

    def seeds(self) -> list[int]:
        """The seed of each image: ``seed``, ``seed + 1``, …; a random base seed when none is given."""
        base = self.seed if self.seed is not None else random.SystemRandom().randrange(MAX_SEED)
        return [(base + index) % (MAX_SEED + 1) for index in range(self.n)]


@dataclass
class GeneratedImages:
    pngs: list[bytes]
    seeds: list[int | None]
    revised_prompts: list[str | None] = field(default_factory=list)


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=2)
def load_pipeline(model_dir: str) -> Any:
    from diffusers import DiffusionPipeline

    dtype = torch.float16 if device() == "cuda" else torch.float32
    try:
        pipeline = DiffusionPipeline.from_pretrained(model_dir, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the diffusers pipeline at {model_dir}: {exc}") from exc
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device())


def _scale_factor(pipeline: Any) -> int:
    return int(getattr(pipeline, "vae_scale_factor", 8) or 8)


def encode_png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def generate_local(*, model_dir: str, request: ImageRequest, on_step: OnStep | None = None) -> GeneratedImages:
    """PNG bytes of ``request.n`` images. A size the pipeline cannot make (not a multiple of its VAE scale) is an
    ``InvalidMessagesError`` naming ``size``; one that cannot load is a ``ModelLoadError``."""
    with _lock:
        pipeline = load_pipeline(model_dir)
    factor = _scale_factor(pipeline)
    if request.width % factor or request.height % factor:
        raise InvalidMessagesError(
            f"This model makes images whose sides are multiples of {factor} pixels.", param="size"
        )
    seeds = request.seeds()
    options: dict[str, Any] = {}
    if request.negative_prompt:  # only when given: some pipelines (FLUX) take no negative prompt
        options["negative_prompt"] = request.negative_prompt
    if request.guidance_scale is not None:
        options["guidance_scale"] = request.guidance_scale

    def step_end(_pipe: Any, step: int, _timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if on_step is not None:
            on_step(step + 1, request.steps)
        return kwargs

    # One CPU generator per image: a seed gives the same starting noise on any device.
    generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
    with _lock, torch.inference_mode():
        output = pipeline(
            prompt=request.prompt,
            width=request.width,
            height=request.height,
            num_inference_steps=request.steps,
            num_images_per_prompt=request.n,
            generator=generators,
            callback_on_step_end=step_end,
            **options,
        )
    pngs = [encode_png(image) for image in output.images]
    return GeneratedImages(pngs=pngs, seeds=list(seeds), revised_prompts=[None] * len(pngs))
