"""The ML runtime (``workers/``) runs without Django: a GPU host, a training subprocess or a vLLM-side tool imports
it with no settings configured. So no module under ``workers/`` may import Django or the web side."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("django", "rest_framework", "celery", "apps", "tigerplatform")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_workers_import_no_django_and_no_web_side():
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "workers").rglob("*.py"))
        for line, module in _imports(path)
        if module.split(".")[0] in FORBIDDEN
    ]
    assert offending == []


def test_the_rule_sees_an_offending_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("import os\ndef f():\n    from django.conf import settings\n    from apps.chat import models\n")
    assert [m for _, m in _imports(module) if m.split(".")[0] in FORBIDDEN] == ["django.conf", "apps.chat"]
