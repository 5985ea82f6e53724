"""Evaluate a plugin's index on a question set: hit@k, recall@k and search latency p50/p95."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.plugins import indexes
from apps.plugins.management.commands.rethink_import import plugin_by_ref
from workers.retrieval.evaluate import evaluate, read_questions


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("plugin", help="plugin id, or a built-in slug")
        parser.add_argument("questions", type=Path, help='JSONL: {"qid", "question", "relevant": [{"doc_id", ...}]}')
        parser.add_argument("--k", default="1,5,10,100", help="comma-separated cut-offs")
        parser.add_argument("--tfidf-weight", type=float, default=None)
        parser.add_argument("--embedding-weight", type=float, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        plugin = plugin_by_ref(options["plugin"])
        try:
            ks = sorted({int(k) for k in options["k"].split(",") if k.strip()})
        except ValueError:
            raise CommandError("--k must be comma-separated integers") from None
        if not ks or ks[0] < 1:
            raise CommandError("--k must be positive integers")
        if not options["questions"].is_file():
            raise CommandError(f"{options['questions']} is not a file")
        questions = read_questions(path=options["questions"])
        weights = {"tfidf_weight": options["tfidf_weight"], "embedding_weight": options["embedding_weight"]}
        with indexes.searchable(plugin=plugin) as index:
            if index is None:
                raise CommandError(f"{plugin.slug} has no index yet (load or import documents first)")
            report = evaluate(index=index, questions=questions, ks=ks, **weights)
        self.stdout.write(f"{plugin.slug}: {len(index)} chunks")
        self.stdout.write(report.table())
