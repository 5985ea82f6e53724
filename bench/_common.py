"""Bench scaffolding: a throwaway SQLite database (unless DATABASE_URL is set) and Django set up."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/db.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tigerplatform.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
