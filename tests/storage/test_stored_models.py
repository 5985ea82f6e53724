"""Fine-tuned weights kept in S3 (a moto server, see conftest): fetched once for local serving, and mapped to where
a vLLM that mounts a copy of them reads them."""

from __future__ import annotations

from pathlib import Path

from apps.chat.selectors import local_model_spec, serving_spec, vllm_adapter_path
from apps.core import storage
from workers.runtime.specs import ModelSpec


def test_a_stored_adapter_is_fetched_for_local_serving_and_mapped_for_vllm(s3_storage, settings, tmp_path):
    trained = tmp_path / "output"
    trained.mkdir()
    (trained / "adapter_config.json").write_text('{"r": 8}')
    storage.upload_dir(local_dir=trained, prefix="finetunes/ftjob-x/output")
    ref = storage.stored_ref(prefix="finetunes/ftjob-x/output")
    spec = ModelSpec(name="ft:base:x", family="tigerbot", path=str(tmp_path / "base"), adapter_path=ref)

    local = local_model_spec(spec)
    assert local.path == spec.path
    assert Path(local.adapter_path) == Path(settings.STORAGE_CACHE_DIR) / "finetunes/ftjob-x/output"
    assert (Path(local.adapter_path) / "adapter_config.json").read_text() == '{"r": 8}'
    assert local_model_spec(local) == local  # local paths pass through
    upstream = ModelSpec(name="ft:up", family="tigerbot", path=ref, backend="openai-upstream", base_url="http://v/v1")
    assert local_model_spec(upstream) == upstream  # its server loads it, from its own paths

    full = local_model_spec(ModelSpec(name="ft:full", family="tigerbot", path=ref))
    assert full.path == local.adapter_path

    settings.VLLM_ADAPTER_ROOT = "/adapters"
    assert vllm_adapter_path(ref) == "/adapters/ftjob-x/output"
    served = serving_spec(
        spec=ModelSpec(
            name="ft:base:x", family="tigerbot", path="/m", adapter_path=ref, serve_url="http://vllm:8000/v1"
        )
    )
    assert served.adapter_path == "/adapters/ftjob-x/output"
    settings.VLLM_ADAPTER_ROOT = ""
    assert vllm_adapter_path(ref) == local.adapter_path  # vLLM on this host's disk reads the cached copy
