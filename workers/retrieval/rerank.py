"""Rerankers: score (query, passage) pairs with a cross-encoder, here or on a ``/rerank`` server.

``CrossEncoderReranker`` loads a sentence-transformers CrossEncoder directory (offline, once per process);
``UpstreamReranker`` calls the common ``/rerank`` HTTP APIs: Jina/Cohere/vLLM (``{"model", "query",
"documents", "top_n"}`` → ``{"results": [{"index", "relevance_score"}]}``) or Hugging Face TEI
(``{"query", "texts"}`` → ``[{"index", "score"}]``). Failures raise the runtime's typed errors.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

import httpx

from workers.runtime.errors import ModelLoadError, UpstreamError, UpstreamTimeoutError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

RerankApi = Literal["jina", "tei"]
RERANK_APIS: tuple[str, ...] = get_args(RerankApi)
CONNECT_TIMEOUT_S = 5.0
# TEI refuses more texts per request than its --max-client-batch-size, 32 by default.
TEI_BATCH = 32
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class RerankScores:
    scores: list[float]  # one per passage, in the order given
    tokens: int  # tokens read, for usage records (0 when an upstream does not say)


class Reranker(Protocol):
    def score(self, *, query: str, passages: Sequence[str]) -> RerankScores: ...


@functools.cache
def _load(model_dir: str, device: str | None) -> CrossEncoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import CrossEncoder

    return CrossEncoder(model_dir, device=device, local_files_only=True)


class CrossEncoderReranker:
    """A local CrossEncoder; its scores are the model's own (a sigmoid for one-label models)."""

    def __init__(self, *, model_dir: str | Path, device: str | None = None, batch_size: int = 32) -> None:
        self.model_dir = str(Path(model_dir).resolve())
        self.device = device
        self.batch_size = batch_size

    @property
    def model(self) -> CrossEncoder:
        # A missing directory would otherwise be looked up as a Hub id.
        if not Path(self.model_dir).is_dir():
            raise ModelLoadError(f"no reranker directory at {self.model_dir}")
        with _LOAD_LOCK:
            try:
                return _load(self.model_dir, self.device)
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                raise ModelLoadError(f"cannot load the CrossEncoder at {self.model_dir}: {exc}") from exc

    def score(self, *, query: str, passages: Sequence[str]) -> RerankScores:
        if not passages:
            return RerankScores(scores=[], tokens=0)
        model = self.model
        pairs = [(query, passage) for passage in passages]
        if model.num_labels != 1:
            raise ModelLoadError(f"{self.model_dir} has {model.num_labels} output labels; a reranker has one")
        scores = model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)
        encoded = model.tokenizer(
            [query] * len(passages), list(passages), truncation=True, max_length=model.max_seq_length
        )["input_ids"]
        return RerankScores(scores=[float(s) for s in scores], tokens=sum(len(ids) for ids in encoded))


@functools.cache
def _client(base_url: str, api_key: str, timeout_s: float) -> httpx.Client:
    # One pooled client per server, so requests reuse connections.
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))
    return httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout)


class UpstreamReranker:
    """``POST {base_url}/rerank``; ``base_url`` is what precedes ``/rerank`` (``http://vllm:8000/v1``,
    ``http://tei:8080``, ``https://api.jina.ai/v1``)."""

    def __init__(
        self, *, base_url: str, api: RerankApi = "jina", model: str = "", api_key: str = "", timeout_s: float = 30.0
    ) -> None:
        if api not in RERANK_APIS:
            raise ValueError(f"api must be one of {', '.join(RERANK_APIS)}, not {api!r}")
        self.base_url = base_url
        self.api = api
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s

    def score(self, *, query: str, passages: Sequence[str]) -> RerankScores:
        if not passages:
            return RerankScores(scores=[], tokens=0)
        if self.api == "tei":
            scores: list[float] = []
            for start in range(0, len(passages), TEI_BATCH):
                batch = list(passages[start : start + TEI_BATCH])
                body = self._post(
                    {"query": query, "texts": batch, "raw_scores": False, "return_text": False, "truncate": True}
                )
                scores += _scores(body if isinstance(body, list) else None, count=len(batch), key="score")
            return RerankScores(scores=scores, tokens=0)
        body = self._post(
            {
                "model": self.model,
                "query": query,
                "documents": list(passages),
                "top_n": len(passages),
                "return_documents": False,
            }
        )
        results = body.get("results") if isinstance(body, dict) else None
        usage = body.get("usage") if isinstance(body, dict) else None
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
        return RerankScores(
            scores=_scores(results, count=len(passages), key="relevance_score"),
            tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0,
        )

    def _post(self, payload: dict[str, Any]) -> Any:
        client = _client(self.base_url, self.api_key, self.timeout_s)
        try:
            response = client.post("rerank", json=payload)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError(
                f"{self.base_url}/rerank did not answer within {self.timeout_s:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(message=f"{self.base_url}/rerank: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise UpstreamError(
                message=f"{self.base_url}/rerank answered {response.status_code}: {response.text[:300]}",
                status=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            raise UpstreamError(
                message=f"{self.base_url}/rerank answered something other than JSON: {response.text[:200]!r}"
            ) from None


def _scores(results: Any, *, count: int, key: str) -> list[float]:
    """Scores in passage order from ``[{"index", key}]`` in any order; every passage must be scored once."""
    unreadable = UpstreamError(
        message=f"unreadable rerank response: expected a list of {{index, {key}}} covering {count} passages"
    )
    if not isinstance(results, list):
        raise unreadable
    scores: dict[int, float] = {}
    for item in results:
        index = item.get("index") if isinstance(item, dict) else None
        value = item.get(key) if isinstance(item, dict) else None
        if (
            not isinstance(index, int)
            or isinstance(index, bool)
            or not 0 <= index < count
            or index in scores
            or not isinstance(value, int | float)
            or isinstance(value, bool)
        ):
            raise unreadable
        scores[index] = float(value)
    if len(scores) != count:
        raise UpstreamError(message=f"the rerank response scored {len(scores)} of {count} passages")
    return [scores[index] for index in range(count)]
