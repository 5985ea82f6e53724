"""LoRA adapters on one replica of a vLLM upstream, through vLLM's runtime LoRA routes (``upstream_lora`` does
every replica). A spec with ``adapter_path`` is a vLLM LoRA named ``upstream_model``."""

from __future__ import annotations

from typing import Any

import httpx

from workers.runtime.errors import UpstreamError
from workers.runtime.specs import ModelSpec
from workers.runtime.upstream_http import ConnectionFailed, UpstreamUnavailableError, client, request_errors


class AdapterLoadError(UpstreamError):
    """An upstream refused to load or unload a LoRA adapter."""


def load_adapter(*, spec: ModelSpec, base_url: str) -> None:
    """Load the spec's LoRA adapter (``adapter_path``, as the upstream sees it) into the vLLM at ``base_url``
    under the name ``upstream_model``; one it already has counts as loaded."""
    try:
        load_adapter_or_fail(spec=spec, base_url=base_url)
    except ConnectionFailed as exc:
        raise UpstreamUnavailableError(message=f"cannot reach {base_url}: {exc}") from None


def load_adapter_or_fail(*, spec: ModelSpec, base_url: str) -> None:
    """``load_adapter``, a failed connection raised as ``ConnectionFailed`` (for ``failover``)."""
    body = {"lora_name": spec.upstream_model, "lora_path": spec.adapter_path}
    response = _admin_post(spec, base_url, "load_lora_adapter", body)
    if response.status_code == 400 and "already been loaded" in response.text:
        return
    if response.status_code >= 400:
        raise _refusal(
            response, f"{base_url} refused to load LoRA adapter {spec.upstream_model!r} from {spec.adapter_path}"
        )


def unload_adapter(*, spec: ModelSpec, base_url: str) -> None:
    """Unload the LoRA adapter named ``upstream_model`` from the vLLM at ``base_url``; one it does not have
    counts as unloaded."""
    try:
        response = _admin_post(spec, base_url, "unload_lora_adapter", {"lora_name": spec.upstream_model})
    except ConnectionFailed as exc:
        raise UpstreamUnavailableError(message=f"cannot reach {base_url}: {exc}") from None
    if response.status_code == 404 and "cannot be found" in response.text:
        return
    if response.status_code >= 400:
        raise _refusal(response, f"{base_url} refused to unload LoRA adapter {spec.upstream_model!r}")


def _admin_post(spec: ModelSpec, base_url: str, action: str, body: dict[str, Any]) -> httpx.Response:
    # vLLM's LoRA routes live at the server root's /v1, whatever prefix the chat base URL has.
    url = f"{base_url.rstrip('/').removesuffix('/v1')}/v1/{action}"
    with request_errors(spec, base_url, action):
        return client(base_url, spec.api_key, spec.timeout_s).post(url, json=body)


def _refusal(response: httpx.Response, what: str) -> AdapterLoadError:
    detail = response.text[:500]
    if response.status_code in (404, 405) and "No adapter found" not in detail:
        detail += (
            " (is the server a vLLM started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, "
            "and can it read the adapter's path? see VLLM_ADAPTER_ROOT)"
        )
    return AdapterLoadError(status=response.status_code, message=f"{what}: {detail}")
