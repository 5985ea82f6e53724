from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts import services
from workers.errors import NotFound


class Command(BaseCommand):
    help = "Revoke an API key, given the whole key or its prefix (tb-<prefix>)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key_or_prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            api_key = services.api_key_revoke_by_key_or_prefix(key_or_prefix=options["key_or_prefix"])
        except NotFound as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Revoked {api_key.pk} (tb-{api_key.prefix}) of {api_key.owner.username}.")
