"""The API docs (Swagger UI, ReDoc) must render on a host with no internet access: every asset they reference
comes from the platform itself, and the platform serves each of them."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from rest_framework.test import APIClient

# Attributes that make a browser fetch or navigate somewhere.
URL_ATTRIBUTES = {"src", "href", "action", "spec-url", "data", "poster", "srcset", "formaction"}
# In inline scripts and styles: absolute and protocol-relative URLs, CSS url(...), and `url: "..."` settings.
ABSOLUTE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'`)<>]+|[\"'`](//[^\"'`\s]+)", re.IGNORECASE)
CSS_URL = re.compile(r"url\(\s*[\"']?([^\"')\s]+)")
JS_URL_SETTING = re.compile(r"\burl\s*:\s*[\"'`]([^\"'`]+)")


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._inline: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in URL_ATTRIBUTES and value:
                self.urls += [part.split()[0] for part in value.split(",")] if name == "srcset" else [value]
        self._inline = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag: str) -> None:
        self._inline = None

    def handle_data(self, data: str) -> None:
        if self._inline is None:
            return
        for match in ABSOLUTE.finditer(data):
            self.urls.append(match.group(1) or match.group(0))
        self.urls += CSS_URL.findall(data) + JS_URL_SETTING.findall(data)


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def served(settings: Any) -> APIClient:
    # Outside DEBUG, whitenoise serves what `collectstatic` gathered (as `make run` and the image do); a test serves
    # the same files straight from the installed apps instead of collecting 17 MB first.
    settings.WHITENOISE_USE_FINDERS = True
    return APIClient()


@pytest.mark.parametrize(("page", "marker"), [("/api/docs/", b"SwaggerUIBundle"), ("/api/redoc/", b"redoc")])
def test_docs_reference_only_this_server_and_it_serves_every_asset(served: APIClient, page: str, marker: bytes) -> None:
    response = served.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert marker in response.content
    urls = _references(html)
    assert len(urls) >= 2, urls  # the UI's script and the schema, at least
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} references {url}, outside this server"
    assets = {urljoin(page, url) for url in urls}
    assert any(asset.startswith("/static/drf_spectacular_sidecar/") for asset in assets)
    assert "/api/schema/" in assets
    for asset in sorted(assets):
        fetched = served.get(asset)
        assert fetched.status_code == 200, f"{page} needs {asset}: {fetched.status_code}"
        assert _body(fetched), asset


def test_swagger_ui_asks_no_online_validator(served: APIClient) -> None:
    # Swagger UI's default would load a badge image from validator.swagger.io whenever the host is not localhost.
    assert b'"validatorUrl": null' in served.get("/api/docs/").content


def test_the_docs_need_no_api_key(served: APIClient) -> None:
    for page in ("/api/docs/", "/api/redoc/", "/api/schema/"):
        assert served.get(page).status_code == 200, page
