"""Text-to-image runtime: local diffusers pipelines and OpenAI-compatible upstream image servers. No Django."""

from workers.images.pipeline import GeneratedImages, ImageRequest, generate_local
from workers.images.upstream import generate_upstream

__all__ = ["GeneratedImages", "ImageRequest", "generate_local", "generate_upstream"]
