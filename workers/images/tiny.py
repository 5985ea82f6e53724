"""A tiny, randomly initialised Stable Diffusion pipeline for tests and local development: a real
``DiffusionPipeline`` directory (UNet, VAE, CLIP text encoder and tokenizer, scheduler), built offline in a
second. Its images are noise, but of the requested size, and deterministic for a seed."""

from __future__ import annotations

import json
from pathlib import Path

import torch

_SPECIAL = ["<|startoftext|>", "<|endoftext|>"]


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 byte values."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def _write_tokenizer(directory: Path) -> None:
    """A byte-level CLIP BPE tokenizer with no merges: every text encodes, one token per byte."""
    directory.mkdir(parents=True, exist_ok=True)
    symbols = _bytes_to_unicode()
    vocab = {token: index for index, token in enumerate([*symbols, *(s + "</w>" for s in symbols), *_SPECIAL])}
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    (directory / "special_tokens_map.json").write_text(
        json.dumps(
            {"bos_token": _SPECIAL[0], "eos_token": _SPECIAL[1], "unk_token": _SPECIAL[1], "pad_token": _SPECIAL[1]}
        )
    )
    (directory / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": 77,
                "bos_token": _SPECIAL[0],
                "eos_token": _SPECIAL[1],
                "unk_token": _SPECIAL[1],
                "pad_token": _SPECIAL[1],
            }
        )
    )


def make_tiny_pipeline(path: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random ``StableDiffusionPipeline`` to ``path`` (8× VAE downscaling, so 64×64 images come from
    8×8 latents) and return ``path``."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path = Path(path)
    torch.manual_seed(seed)
    _write_tokenizer(path / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(path / "tokenizer")
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            projection_dim=32,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=4,
        sample_size=64,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    # diffusers' __init__ star-imports dummy classes (no save_pretrained) under TYPE_CHECKING, so mypy sees those.
    pipeline.save_pretrained(path, safe_serialization=True)  # type: ignore[attr-defined]
    return path
