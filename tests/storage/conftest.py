"""An S3 API for the storage tests: moto's server on 127.0.0.1 (a random port), in this process.

It fakes S3 only because no real object store is reachable where the suite runs; the code under test talks to it
over HTTP exactly as it would to S3 or MinIO (boto3 through django-storages).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Imported by name for the end-to-end test (they live in other test packages' conftest files).
from tests.finetune.conftest import identity_base, identity_examples, identity_pairs, instruct_dir  # noqa: F401


@dataclass(frozen=True)
class S3:
    endpoint_url: str
    bucket: str

    def env(self) -> dict[str, str]:
        """The environment that points a process at this bucket (as an operator's .env would)."""
        return {
            "STORAGE_BACKEND": "s3",
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_S3_REGION_NAME": "us-east-1",
        }

    def stored_keys(self) -> list[str]:
        client = _client(self.endpoint_url)
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


def _client(endpoint_url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint: str) -> S3:
    """A new, empty bucket."""
    bucket = f"tp-{uuid.uuid4().hex[:12]}"
    _client(moto_endpoint).create_bucket(Bucket=bucket)
    return S3(endpoint_url=moto_endpoint, bucket=bucket)


@pytest.fixture
def s3_storage(s3: S3, settings: Any, tmp_path: Path) -> S3:
    """This process's default storage on the bucket, its cache in a fresh directory (settings are restored)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": s3.bucket,
                "endpoint_url": s3.endpoint_url,
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                "file_overwrite": False,
            },
        },
    }
    settings.STORAGE_CACHE_DIR = tmp_path / "cache"
    return s3
