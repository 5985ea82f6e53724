from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.accounts import services


class Command(BaseCommand):
    help = "Create an API key for a user; the key is printed alone on the last line (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="Username that will own the key.")
        parser.add_argument("--create-user", action="store_true", help="Create the user if it does not exist.")
        parser.add_argument("--staff", action="store_true", help="Make the user staff/superuser (admin login).")
        parser.add_argument("--name", default="", help="A label for the key.")
        parser.add_argument("--expires-days", type=int, default=None, help="Expire the key after N days.")
        parser.add_argument("--rate-limit", type=int, default=None, help="Requests per minute for this key.")
        parser.add_argument(
            "--account-rate-limit",
            type=int,
            default=None,
            help="Requests per minute that all of the user's keys share (sets the account's limit).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["user"]
        exists = get_user_model().objects.filter(username=username).exists()
        if not exists and not options["create_user"]:
            raise CommandError(f"No user {username!r}; pass --create-user to create it.")
        user = services.user_get_or_create(username=username, staff=options["staff"])
        expires_at = None
        if options["expires_days"] is not None:
            if options["expires_days"] <= 0:
                raise CommandError("--expires-days must be positive.")
            expires_at = timezone.now() + timedelta(days=options["expires_days"])
        for option in ("rate_limit", "account_rate_limit"):
            if options[option] is not None and options[option] <= 0:
                raise CommandError(f"--{option.replace('_', '-')} must be positive.")
        if options["account_rate_limit"] is not None:
            services.account_rate_limit_set(owner=user, rate_limit_per_minute=options["account_rate_limit"])
        created = services.api_key_create(
            owner=user,
            name=options["name"],
            expires_at=expires_at,
            rate_limit_per_minute=options["rate_limit"],
        )
        self.stderr.write(f"Created API key {created.api_key.pk} for {user.username}. It is shown only once:")
        self.stdout.write(created.plaintext)
