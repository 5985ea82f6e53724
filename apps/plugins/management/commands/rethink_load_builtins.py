"""Create the built-in rethink plugins (law, finance, wiki) and ingest their corpora; idempotent."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.plugins.management.commands._progress import Bars
from apps.plugins.services import builtin_plugins
from workers.errors import DomainError


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--corpora",
            type=Path,
            default=None,
            help="directory with law.jsonl, finance.jsonl, wiki.jsonl (default: ../shared/corpora)",
        )
        parser.add_argument("--only", default="", help="comma-separated subset, e.g. law,wiki")
        parser.add_argument(
            "--background-if-missing",
            action="store_true",
            help="return at once; if a built-in is not loaded yet, load them in a detached process "
            "(log: var/rethink_builtins.log, pid: var/rethink_builtins.pid). For `make run`.",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        only = [kind.strip() for kind in options["only"].split(",") if kind.strip()] or None
        if options["background_if_missing"]:
            self._spawn(only=only, corpora=options["corpora"])
            return
        lock_path = Path(settings.MEDIA_ROOT) / "indexes" / "builtins.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        bars = Bars(stream=self.stderr._out, disable=options["no_progress"])
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one loader at a time
            try:
                loaded = builtin_plugins.builtins_load(
                    corpora_dir=options["corpora"],
                    only=only,
                    progress_for=bars,
                    log=lambda line: self.stdout.write(line),
                )
            except DomainError as exc:
                raise CommandError(exc.message) from None
            finally:
                bars.close()
        for kind, count in loaded.items():
            self.stdout.write(f"{kind}: {count} document(s) ingested")

    def _spawn(self, *, only: list[str] | None, corpora: Path | None) -> None:
        missing = builtin_plugins.builtins_missing(only=only)
        if not missing:
            self.stdout.write("built-in plugins already loaded")
            return
        # Low priority (nice): embedding the corpora must not slow down the requests the server is answering.
        command = [
            *(["nice", "-n", "10"] if shutil.which("nice") else []),
            sys.executable,
            str(Path(settings.BASE_DIR) / "manage.py"),
            "rethink_load_builtins",
            "--no-progress",
            "--only",
            ",".join(missing),
        ]
        if corpora:
            command += ["--corpora", str(corpora)]
        log_path = Path(settings.VAR_DIR) / "rethink_builtins.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and command
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=settings.BASE_DIR,
                env=os.environ.copy(),
            )
        # scripts/run.sh stops it with the platform (its own session: the signal goes to its whole group).
        (Path(settings.VAR_DIR) / "rethink_builtins.pid").write_text(str(process.pid))
        self.stdout.write(
            f"loading built-in plugins {', '.join(missing)} in the background (pid {process.pid}, log {log_path})"
        )
