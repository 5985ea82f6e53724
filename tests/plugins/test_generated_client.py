"""A client generated from the live /api/schema/ by openapi-python-client creates a custom plugin, uploads a file
and searches it: the declared request and response shapes are enough to use the plugins API."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "tigerplatform_client"
TEXT = "# Kilns\n\nA stoneware glaze matures in the kiln at about 1250 degrees Celsius.\n"


@pytest.fixture
def generated(live_server: Any, tmp_path: Path) -> Iterator[ModuleType]:
    schema = tmp_path / "schema.json"
    schema.write_bytes(
        httpx.get(f"{live_server.url}/api/schema/", params={"format": "json"}).raise_for_status().content
    )
    generator = Path(sys.executable).parent / "openapi-python-client"
    subprocess.run(
        [str(generator), "generate", "--path", str(schema), "--output-path", str(tmp_path / PACKAGE), "--meta", "none"],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_generated_client_creates_uploads_and_searches(generated: ModuleType, live_server: Any, tenant: Tenant) -> None:
    api = importlib.import_module(f"{PACKAGE}.api.plugins")
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    for name in (
        "plugins_custom_create",
        "plugins_custom_files_upload",
        "plugins_custom_files_retrieve",
        "plugins_search",
    ):
        importlib.import_module(f"{api.__name__}.{name}")
    client = generated.AuthenticatedClient(base_url=live_server.url, token=tenant.key, raise_on_unexpected_status=True)

    plugin = api.plugins_custom_create.sync(client=client, body=models.PluginCreateRequest(name="Pottery notes"))
    assert isinstance(plugin, models.Plugin), plugin
    upload = models.FilesUploadRequest(
        file=[types.File(payload=io.BytesIO(TEXT.encode()), file_name="kilns.md", mime_type="text/markdown")]
    )
    uploaded = api.plugins_custom_files_upload.sync(plugin_id=plugin.plugin_id, client=client, body=upload)
    assert isinstance(uploaded, models.PluginUploadList), uploaded
    file_id = uploaded.data[0].file_id

    deadline = time.monotonic() + 60
    while True:
        document = api.plugins_custom_files_retrieve.sync(plugin_id=plugin.plugin_id, file_id=file_id, client=client)
        assert isinstance(document, models.PluginFile), document
        if document.status.value not in ("queued", "processing"):
            break
        assert time.monotonic() < deadline, "the upload was not ingested within 60 s"
        time.sleep(0.2)
    assert document.status.value == "processed", document.error
    assert document.chunk_count >= 1

    found = api.plugins_search.sync(
        client=client, body=models.SearchRequest(plugin=plugin.plugin_id, query="stoneware glaze kiln", top_k=3)
    )
    assert isinstance(found, models.SearchResult), found
    assert found.data and "1250 degrees Celsius" in found.data[0].text
    assert found.data[0].doc_id == document.external_id
