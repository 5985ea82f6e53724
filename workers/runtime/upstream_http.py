"""HTTP to an OpenAI-compatible upstream's replicas: one pooled client per replica, failover across replicas
(``replicas.replica_health`` gives the order) and httpx's errors turned into the runtime's.

Each request tries the replicas in turn, moving on when a connection fails before any of the answer reached the
caller (refused, reset, connect timeout); a lone replica is retried once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

import httpx

from workers.runtime.errors import UpstreamError, UpstreamTimeoutError
from workers.runtime.replicas import replica_health
from workers.runtime.specs import ModelSpec

CONNECT_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 3.0
MIN_ATTEMPTS = 2  # so a lone replica gets one retry
RETRY_BACKOFF_S = 0.2  # before retrying the same replica
# Failures of the connection itself, before the upstream said anything: another attempt cannot duplicate output.
_CONNECTION_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
# What a malformed answer (not JSON, missing fields, wrong types) raises while it is read.
_INVALID_ANSWER_ERRORS = (ValueError, KeyError, IndexError, TypeError, AttributeError)
T = TypeVar("T")


class UpstreamUnavailableError(UpstreamError):
    """No replica of the upstream could be reached (maps to 502 ``upstream_error``)."""

    def __init__(self, *, message: str) -> None:
        super().__init__(message=message)


class ConnectionFailed(Exception):
    """This replica's connection failed before any of the answer was handed out; ``failover`` tries another."""


@cache
def client(base_url: str, api_key: str, timeout_s: float) -> httpx.Client:
    # One pooled client per replica, so requests reuse connections.
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))
    return httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout)


def base_urls(*, spec: ModelSpec) -> list[str]:
    """The model's replicas: ``base_url`` then ``replica_urls``, without duplicates."""
    urls = (url.rstrip("/") for url in (spec.base_url, *spec.replica_urls) if url)
    return list(dict.fromkeys(urls))


def probe(*, spec: ModelSpec, base_url: str) -> bool:
    """Whether the replica answers ``GET {base_url}/models`` (any status under 500: it is up, if picky)."""
    try:
        response = client(base_url, spec.api_key, spec.timeout_s).get("models", timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return response.status_code < 500


def failover(spec: ModelSpec, attempt: Callable[[str], T]) -> T:
    """``attempt(base_url)`` on the replicas in turn until one does not raise ``ConnectionFailed``."""
    urls = replica_health.order(base_urls(spec=spec), probe=lambda url: probe(spec=spec, base_url=url))
    while len(urls) < MIN_ATTEMPTS:
        urls += urls[: MIN_ATTEMPTS - len(urls)]
    failures: list[str] = []
    for index, url in enumerate(urls):
        if index and url == urls[index - 1]:
            time.sleep(RETRY_BACKOFF_S)
        try:
            result = attempt(url)
        except ConnectionFailed as exc:
            replica_health.mark_failed(url)
            failures.append(f"{url} ({exc})")
            continue
        except UpstreamError:
            replica_health.mark_up(url)  # it answered, if with an error
            raise
        replica_health.mark_up(url)
        return result
    replicas = len(dict.fromkeys(urls))
    raise UpstreamUnavailableError(
        message=f"could not connect to {'the' if replicas == 1 else f'any of the {replicas}'} upstream "
        f"replica{'s' if replicas > 1 else ''} of model {spec.name!r} after {len(urls)} attempts: "
        + "; ".join(failures)
    )


@contextmanager
def request_errors(spec: ModelSpec, base_url: str, what: str) -> Iterator[None]:
    """httpx's errors while sending ``what``: a failed connection (another replica may be tried), a timeout,
    anything else."""
    try:
        yield
    except _CONNECTION_ERRORS as exc:
        raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{base_url} did not answer {what} within {spec.timeout_s}s") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(message=f"{what} at {base_url} failed: {exc}") from exc


@contextmanager
def answer_errors(
    *, base_url: str, response: httpx.Response, streaming: bool, started: Callable[[], bool] = lambda: False
) -> Iterator[None]:
    """httpx's and a malformed answer's errors while reading ``response`` (whole, or event by event when
    ``streaming``); a failed connection may go to another replica until ``started`` (a chunk was handed out).
    Closes the response."""
    try:
        yield
    except _CONNECTION_ERRORS as exc:
        if not started():
            when = "before the first chunk" if streaming else "while reading"
            raise ConnectionFailed(f"{type(exc).__name__} {when}: {exc}") from exc
        raise UpstreamError(message=f"stream from {base_url} broke: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{base_url} stopped {'streaming' if streaming else 'answering'}") from exc
    except httpx.HTTPError as exc:
        broke = f"stream from {base_url} broke" if streaming else f"connection to {base_url} failed"
        raise UpstreamError(message=f"{broke}: {exc}") from exc
    except _INVALID_ANSWER_ERRORS as exc:
        what = "stream event" if streaming else "response"
        raise UpstreamError(status=response.status_code, message=f"invalid {what}: {exc!r}") from exc
    finally:
        response.close()


def post(spec: ModelSpec, base_url: str, route: str, body: dict[str, Any]) -> httpx.Response:
    """``POST {base_url}/{route}``, the answer left to stream; an error status raises ``UpstreamError``."""
    http = client(base_url, spec.api_key, spec.timeout_s)
    request = http.build_request("POST", route, json=body)
    with request_errors(spec, base_url, route):
        response = http.send(request, stream=True)
    if response.status_code >= 400:
        try:
            detail = response.read().decode(errors="replace")[:500]
        except httpx.HTTPError:
            detail = ""
        finally:
            response.close()
        raise UpstreamError(status=response.status_code, message=detail or response.reason_phrase)
    return response
