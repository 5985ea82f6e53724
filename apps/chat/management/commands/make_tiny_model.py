from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.chat.services import model_endpoint_register
from workers.runtime.specs import FAMILIES
from workers.runtime.tiny import make_tiny_model


class Command(BaseCommand):
    help = (
        "Save a tiny randomly initialised causal LM and its BPE tokenizer (trained on local text) to DIR, so the "
        "real loading code runs without downloading weights; optionally register it as a servable model."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dir")
        parser.add_argument("--family", choices=FAMILIES, default="tigerbot")
        parser.add_argument("--register", metavar="NAME", help="Register the model under this id.")
        parser.add_argument("--default", action="store_true", help="Make it the default chat model.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        path = make_tiny_model(Path(options["dir"]).resolve(), family=options["family"], seed=options["seed"])
        self.stdout.write(f"Tiny {options['family']} model saved to {path}")
        if options["register"]:
            model_endpoint_register(
                name=options["register"], family=options["family"], path=str(path), is_default=options["default"]
            )
            self.stdout.write(f"Registered as model {options['register']!r}")
