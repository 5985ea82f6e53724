"""LoRA adapters on every replica of a vLLM upstream, through vLLM's runtime LoRA API
(``POST /v1/load_lora_adapter``, ``POST /v1/unload_lora_adapter``; vLLM needs ``--enable-lora`` and
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``). The spec is an upstream spec whose ``upstream_model`` is the
adapter's name and ``adapter_path`` its directory as vLLM sees it."""

from __future__ import annotations

import logging

from workers.runtime.errors import UpstreamError, UpstreamTimeoutError
from workers.runtime.replicas import replica_health
from workers.runtime.specs import ModelSpec
from workers.runtime.upstream_adapters import load_adapter, unload_adapter
from workers.runtime.upstream_http import UpstreamUnavailableError, base_urls

logger = logging.getLogger(__name__)


def load_everywhere(*, spec: ModelSpec) -> list[str]:
    """Load the adapter into every replica; returns those that have it.

    A replica that cannot be reached is skipped (it loads the adapter on its first request for it), but one
    must load it. A replica that refuses it fails the call, after unloading it from those that had loaded it.
    """
    loaded: list[str] = []
    unreachable: list[str] = []
    for url in base_urls(spec=spec):
        try:
            load_adapter(spec=spec, base_url=url)
        except UpstreamUnavailableError as exc:
            replica_health.mark_failed(url)
            unreachable.append(exc.reason)
            continue
        except (UpstreamError, UpstreamTimeoutError):
            unload_everywhere(spec=spec, urls=loaded)
            raise
        loaded.append(url)
    if not loaded:
        raise UpstreamUnavailableError(
            message="no replica could be reached to load the adapter: " + "; ".join(unreachable)
        )
    return loaded


def unload_everywhere(*, spec: ModelSpec, urls: list[str] | None = None) -> list[str]:
    """Unload the adapter from every replica (or ``urls``); returns the failures, which are only logged: a
    replica that is down has forgotten its runtime-loaded adapters anyway."""
    failures: list[str] = []
    for url in base_urls(spec=spec) if urls is None else urls:
        try:
            unload_adapter(spec=spec, base_url=url)
        except (UpstreamError, UpstreamTimeoutError) as exc:
            logger.warning("could not unload LoRA adapter %r from %s: %s", spec.upstream_model, url, exc)
            failures.append(f"{url}: {exc}")
    return failures
