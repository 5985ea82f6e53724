from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.chat.models import ModelEndpoint
from apps.chat.services import model_endpoint_register
from workers.images.tiny import make_tiny_pipeline


class Command(BaseCommand):
    help = (
        "Save a tiny randomly initialised Stable Diffusion pipeline (a real diffusers directory; its images are "
        "noise) to DIR, with no download; optionally register it as an image model."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dir")
        parser.add_argument("--register", metavar="NAME", help="Register the pipeline under this id.")
        parser.add_argument("--default", action="store_true", help="Make it the default image model.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        path = make_tiny_pipeline(Path(options["dir"]).resolve(), seed=options["seed"])
        self.stdout.write(f"Tiny diffusers pipeline saved to {path}")
        if options["register"]:
            model_endpoint_register(
                name=options["register"], kind=ModelEndpoint.Kind.IMAGE, path=str(path), is_default=options["default"]
            )
            self.stdout.write(f"Registered as image model {options['register']!r}")
