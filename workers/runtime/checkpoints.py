"""Where a model's weights live: a Hugging Face checkpoint directory, or a single GGUF file that transformers
dequantises on load (``from_pretrained(dir, gguf_file=name)``). Serving and training both go through here."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GGUF_SUFFIX = ".gguf"


@dataclass(frozen=True)
class PretrainedSource:
    """The arguments ``from_pretrained`` needs for one checkpoint: its directory and, for GGUF, the file name."""

    directory: str
    gguf_file: str = ""

    @property
    def kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def is_gguf(path: str | Path) -> bool:
    return str(path).lower().endswith(GGUF_SUFFIX)


def pretrained_source(path: str | Path) -> PretrainedSource:
    """``path`` is a checkpoint directory or a ``.gguf`` file."""
    if is_gguf(path):
        file = Path(path)
        return PretrainedSource(directory=str(file.parent), gguf_file=file.name)
    return PretrainedSource(directory=str(path))


def packaged_gguf(*, package: str, file_name: str) -> Path | None:
    """A GGUF file shipped inside an installed package, found without importing the package (whose own
    imports may need dependencies that were deliberately not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / file_name
        if candidate.is_file():
            return candidate
    return None
