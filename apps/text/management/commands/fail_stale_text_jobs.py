from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.text.services.jobs import text_jobs_fail_stale


class Command(BaseCommand):
    help = "Mark pdf2text and summarization jobs whose worker vanished as failed (worker_lost)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"{text_jobs_fail_stale()} stale job(s) marked failed")
