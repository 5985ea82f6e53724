from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


def validate_http_url(value: str) -> None:
    """An http(s) URL with a host; unlike URLValidator, single-label hosts (``http://vllm:8000/v1``, a compose
    service) are fine."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{value!r} is not an http(s) URL with a host.", code="invalid_url")


def validate_url_list(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(url, str) for url in value):
        raise ValidationError("Give a JSON list of base URLs.", code="invalid_url_list")
    for url in value:
        validate_http_url(url)


class ModelEndpoint(models.Model):
    """A servable model, managed by operators. The runtime receives it as a plain ``ModelSpec``."""

    class Family(models.TextChoices):
        TIGERBOT = "tigerbot", "TigerBot (Llama-2 based)"
        LLAMA2_CHAT = "llama2-chat", "Llama-2 chat"
        BAICHUAN2 = "baichuan2", "Baichuan 2"
        HF_TEMPLATE = "hf-template", "Tokenizer chat template"

    class Backend(models.TextChoices):
        LOCAL = "local", "Local (transformers)"
        OPENAI_UPSTREAM = "openai-upstream", "OpenAI-compatible upstream (vLLM, TGI, …)"

    class Quantization(models.TextChoices):
        NONE = "none", "None"
        INT8 = "8bit", "8-bit (bitsandbytes)"
        NF4 = "4bit", "4-bit nf4 (bitsandbytes)"

    class Kind(models.TextChoices):
        CHAT = "chat", "Chat"
        EMBEDDING = "embedding", "Embedding"
        RERANK = "rerank", "Rerank (cross-encoder)"
        IMAGE = "image", "Text-to-image (diffusers pipeline)"

    class RerankApi(models.TextChoices):
        JINA = "jina", "Jina / Cohere / vLLM: {model, query, documents, top_n}"
        TEI = "tei", "Hugging Face TEI: {query, texts}"

    name = models.SlugField(max_length=100, unique=True, help_text="The id clients pass as `model`.")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CHAT)
    family = models.CharField(max_length=20, choices=Family.choices, default=Family.TIGERBOT)
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.LOCAL)
    path = models.CharField(max_length=500, blank=True, help_text="Local checkpoint directory.")
    base_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_http_url],
        help_text="Upstream base URL, e.g. http://vllm:8000/v1",
    )
    replica_urls = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_url_list],
        help_text="More base URLs serving the same model (replicas of base_url or serve_url), e.g. "
        '["http://vllm-2:8000/v1"]. Requests go round-robin; one that fails to connect is skipped for '
        "a cool-off, then health-checked.",
    )
    serve_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_http_url],
        help_text="Local models only: an OpenAI-compatible server (vLLM with --enable-lora) serving the same "
        "weights as path. Chat and fine-tuned LoRA adapters are served there; path is still used to "
        "fine-tune and to count tokens.",
    )
    upstream_api_key = models.CharField(max_length=500, blank=True)
    upstream_model = models.CharField(max_length=200, blank=True, help_text="Model name at the upstream.")
    dtype = models.CharField(max_length=20, default="auto")
    quantization = models.CharField(max_length=10, choices=Quantization.choices, default=Quantization.NONE)
    rope_scaling = models.JSONField(null=True, blank=True, help_text='e.g. {"type": "dynamic", "factor": 2.0}')
    max_input_tokens = models.PositiveIntegerField(default=2048)
    max_new_tokens = models.PositiveIntegerField(default=512)
    matryoshka = models.BooleanField(
        default=False,
        help_text="Embedding models trained for truncation (Matryoshka representation learning, e.g. "
        "nomic-embed-text-v1.5): a request's `dimensions` below the native size keeps the leading "
        "components, re-normalised. Otherwise `dimensions` must equal the native size.",
    )
    rerank_api = models.CharField(
        max_length=10,
        choices=RerankApi.choices,
        default=RerankApi.JINA,
        help_text="Upstream rerank models only: the request shape POSTed to {base_url}/rerank.",
    )
    is_default = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    owned_by = models.CharField(max_length=100, default="tigerplatform")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(is_default=True), name="one_default_model_per_kind"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from apps.chat.selectors import endpoint_spec

        if self.serve_url and self.backend != self.Backend.LOCAL:
            raise ValidationError({"serve_url": "Only a local model has a serve_url; an upstream one has base_url."})
        if self.kind == self.Kind.IMAGE and self.serve_url:
            raise ValidationError({"serve_url": "An image model runs here (path) or at an upstream (base_url)."})
        if self.kind == self.Kind.RERANK and self.serve_url:
            raise ValidationError({"serve_url": "A rerank model runs here (path) or at a /rerank server (base_url)."})
        if self.replica_urls and not (self.base_url if self.backend != self.Backend.LOCAL else self.serve_url):
            raise ValidationError({"replica_urls": "Replicas need a base_url (upstream) or serve_url (local)."})
        try:
            endpoint_spec(self)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
