"""rethink_load_builtins, rethink_import and rethink_eval on small samples of the real corpora."""

from __future__ import annotations

import itertools
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.plugins.models import Document, Plugin

from .conftest import CORPORA


def _lines(name: str, count: int, *, scan: int = 40) -> list[dict]:
    path = CORPORA / f"{name}.jsonl"
    if not path.exists():
        pytest.skip(f"corpus {path} is not checked out")
    with path.open(encoding="utf-8") as lines:
        records = [json.loads(line) for line in itertools.islice(lines, scan)]
    return sorted(records, key=lambda r: len(r["text"]))[:count]  # the shortest: quick to embed


def _write(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


@pytest.fixture
def corpora(tmp_path: Path) -> Path:
    directory = tmp_path / "corpora"
    directory.mkdir()
    for name in ("law", "finance", "wiki"):
        _write(directory / f"{name}.jsonl", _lines(name, 3))
    return directory


def _run(*args: str) -> str:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_load_builtins_is_idempotent(db, corpora, plugin_indexes):
    output = _run("rethink_load_builtins", "--corpora", str(corpora))
    assert "law: 3 document(s) ingested" in output and "wiki: 3 document(s) ingested" in output
    assert "100%" in output  # the progress bar
    assert set(Plugin.objects.filter(builtin=True, owner=None).values_list("slug", flat=True)) == {
        "law",
        "finance",
        "wiki",
    }
    assert set(Document.objects.values_list("status", flat=True)) == {"processed"}

    again = _run("rethink_load_builtins", "--corpora", str(corpora), "--only", "law,wiki")
    assert "law: up to date" in again and "law: 0 document(s) ingested" in again and "finance" not in again

    records = [json.loads(line) for line in (corpora / "wiki.jsonl").read_text(encoding="utf-8").splitlines()]
    records[0]["text"] += " Zyzzyva is the last word."
    _write(corpora / "wiki.jsonl", records)
    assert "wiki: 1 document(s) ingested" in _run("rethink_load_builtins", "--corpora", str(corpora), "--only", "wiki")

    with pytest.raises(CommandError, match="poetry"):
        _run("rethink_load_builtins", "--corpora", str(corpora), "--only", "poetry")


def test_background_if_missing(db, corpora, monkeypatch, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # where its log and pid file go
    spawned: list[list[str]] = []

    class FakePopen:
        pid = 4242

        def __init__(self, command: list[str], **kwargs: object) -> None:
            spawned.append(command)

    monkeypatch.setattr("subprocess.Popen", FakePopen)
    output = _run("rethink_load_builtins", "--background-if-missing", "--corpora", str(corpora), "--only", "finance")
    assert "in the background (pid 4242" in output
    assert (tmp_path / "rethink_builtins.pid").read_text() == "4242"  # for scripts/run.sh to stop it
    assert spawned[0][-4:] == ["--only", "finance", "--corpora", str(corpora)]
    _run("rethink_load_builtins", "--corpora", str(corpora), "--only", "finance", "--no-progress")
    assert "already loaded" in _run("rethink_load_builtins", "--background-if-missing", "--only", "finance")
    assert len(spawned) == 1


def test_import_reports_bad_files(db, tmp_path, plugin_indexes, crazyones_pdf):
    Plugin.objects.create(owner=None, builtin=True, slug="wiki", name="Wiki", kind="wiki")
    source = tmp_path / "docs"
    (source / "nested").mkdir(parents=True)
    (source / "tides.md").write_text("# Tides\n\nThe moon pulls the ocean into tides.\n", encoding="utf-8")
    (source / "nested" / "crazy.pdf").write_bytes(crazyones_pdf)
    (source / "empty.txt").write_bytes(b"")
    (source / "broken.pdf").write_bytes(b"%PDF-1.4\n" + b"\x00junk" * 20)
    (source / "ignored.png").write_bytes(b"\x89PNG")
    output = _run("rethink_import", "wiki", str(source))
    assert "failed: empty.txt" in output and "failed: broken.pdf" in output
    assert "2 of 3 document(s) indexed" in output and "2 failed" in output
    statuses = dict(Document.objects.values_list("external_id", "status"))
    assert statuses == {
        "tides.md": "processed",
        "crazy.pdf": "processed",
        "empty.txt": "failed",
        "broken.pdf": "failed",
    }
    assert "nothing new" in _run("rethink_import", "wiki", str(source / "tides.md"))
    with pytest.raises(CommandError, match="No plugin"):
        _run("rethink_import", "nope", str(source))


def test_eval_prints_hit_and_recall(db, corpora, tmp_path, plugin_indexes):
    _run("rethink_load_builtins", "--corpora", str(corpora), "--only", "finance", "--no-progress")
    records = [json.loads(line) for line in (corpora / "finance.jsonl").read_text(encoding="utf-8").splitlines()]
    questions = tmp_path / "questions.jsonl"
    _write(
        questions,
        [
            {
                "qid": f"q{i}",
                "question": r["title"] + " " + r["text"][:80],
                "relevant": [{"doc_id": r["id"], "evidence": None}],
            }
            for i, r in enumerate(records)
        ],
    )
    output = _run("rethink_eval", "finance", str(questions), "--k", "1,5")
    assert "hit@k" in output and "recall@k" in output and "p50" in output and "p95" in output
    assert "    5   1.000     1.000" in output
    with pytest.raises(CommandError, match="--k"):
        _run("rethink_eval", "finance", str(questions), "--k", "a,b")
