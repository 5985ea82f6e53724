"""Text-to-image at an OpenAI-compatible upstream: ``POST {base_url}/images/generations`` asking for
``b64_json`` (an upstream that answers with URLs anyway has them downloaded), so every image is stored here."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx

from workers.images.pipeline import GeneratedImages, ImageRequest
from workers.runtime.errors import UpstreamError, UpstreamTimeoutError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _request_body(*, model: str, request: ImageRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "prompt": request.prompt,
        "n": request.n,
        "size": f"{request.width}x{request.height}",
        "response_format": "b64_json",
        "steps": request.steps,
    }
    if request.seed is not None:
        body["seed"] = request.seed
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if request.guidance_scale is not None:
        body["guidance_scale"] = request.guidance_scale
    return body


def _image_bytes(client: httpx.Client, item: Any) -> bytes:
    if not isinstance(item, dict):
        raise UpstreamError(message="an item of data is not an object")
    if isinstance(item.get("b64_json"), str):
        try:
            return base64.b64decode(item["b64_json"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UpstreamError(message=f"b64_json is not base64: {exc}") from exc
    if isinstance(item.get("url"), str):
        response = client.get(item["url"])
        if response.status_code != 200:
            raise UpstreamError(
                message=f"fetching an image URL answered {response.status_code}", status=response.status_code
            )
        return response.content
    raise UpstreamError(message="an item of data has neither b64_json nor url")


def generate_upstream(
    *, base_url: str, model: str, api_key: str, request: ImageRequest, timeout_s: float
) -> GeneratedImages:
    """The upstream's images, as PNG bytes when it sent PNGs (other formats are kept as they came)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout_s) as client:
            response = client.post("images/generations", json=_request_body(model=model, request=request))
            if response.status_code != 200:
                raise UpstreamError(message=response.text[:500], status=response.status_code)
            try:
                payload = response.json()
            except ValueError as exc:
                raise UpstreamError(message="the response is not JSON") from exc
            data = payload.get("data") if isinstance(payload, dict) else None
            if not isinstance(data, list) or not data:
                raise UpstreamError(message="the response has no data list")
            images = [_image_bytes(client, item) for item in data[: request.n]]
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(str(exc) or "timed out") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(message=str(exc)) from exc
    revised = [item.get("revised_prompt") for item in data[: request.n]]
    # The upstream's seeding is its own: no seed is claimed for its images.
    return GeneratedImages(pngs=images, seeds=[None] * len(images), revised_prompts=revised)
