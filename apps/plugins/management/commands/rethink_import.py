"""Import a file or a directory (.jsonl in the corpora shape, .md, .txt, .pdf, .docx) into a plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.plugins import dense
from apps.plugins.management.commands._progress import Bars
from apps.plugins.models import Plugin
from apps.plugins.services import documents
from workers.errors import DomainError


def plugin_by_ref(ref: str) -> Plugin:
    """A plugin by id, or by slug when that slug is unambiguous (built-ins first)."""
    plugin = Plugin.objects.filter(pk=ref).first() or Plugin.objects.filter(slug=ref, owner__isnull=True).first()
    if plugin is None:
        matches = list(Plugin.objects.filter(slug=ref)[:2])
        if len(matches) != 1:
            raise CommandError(f"No plugin {ref!r} (give a built-in slug or a plugin id).")
        plugin = matches[0]
    return plugin


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("plugin", help="plugin id, or a built-in slug")
        parser.add_argument("path", type=Path, help="a file or a directory")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        plugin = plugin_by_ref(options["plugin"])
        bars = Bars(stream=self.stderr._out, disable=options["no_progress"])
        try:
            run, rejected = documents.documents_import(
                plugin=plugin, path=options["path"], progress=bars(plugin.slug), dense_build_in_background=False
            )
            if run is not None:  # searchable by BM25 from here on; now its dense side
                dense.dense_build(plugin_id=plugin.pk, progress=bars(f"{plugin.slug} embeddings"))
        except DomainError as exc:
            raise CommandError(exc.message) from None
        finally:
            bars.close()
        for document in rejected:
            self.stdout.write(f"failed: {document.external_id}: {document.error}")
        if run is None:
            self.stdout.write(f"{plugin.slug}: nothing new to import")
            return
        for document in run.documents.filter(status="failed"):
            self.stdout.write(f"failed: {document.external_id}: {document.error}")
        self.stdout.write(
            f"{plugin.slug}: {run.done - run.failed} of {run.total} document(s) indexed, "
            f"{run.chunks} chunks, {run.failed + len(rejected)} failed"
        )
