from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.chat.services import model_endpoint_register


class Command(BaseCommand):
    help = (
        "Create or update model endpoints from a JSON file: a list of objects with the fields of ModelEndpoint "
        "(name, family, backend, path | base_url, replica_urls, serve_url, quantization, rope_scaling, …)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            entries = json.loads(Path(options["file"]).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from None
        if not isinstance(entries, list):
            raise CommandError("The file must hold a JSON list of model objects.")
        for index, entry in enumerate(entries):
            try:
                endpoint = model_endpoint_register(**entry)
            except (TypeError, ValueError, ValidationError) as exc:
                raise CommandError(f"Entry {index} ({entry.get('name')!r}): {exc}") from None
            self.stdout.write(f"Model {endpoint.name} ({endpoint.backend}, {endpoint.family}) registered.")
