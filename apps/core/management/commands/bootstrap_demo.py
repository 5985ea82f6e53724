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
            "\n".join([
                "Demo credentials (kept in var/demo_credentials.json):",
                f"  admin console : /admin/  user {credentials['admin_user']}"
                f"  password {credentials['admin_password']}",
                f"  API user      : {credentials['api_user']}",
                f"  API key       : {credentials['api_key']}",
            ])
        )

    def _ensure_model(self) -> None:
        """Without any configured model, a tiny demo model (taught two greetings) so the API answers at once."""
        from apps.chat.models import ModelEndpoint
        from apps.chat.services import model_endpoint_register
        from apps.embeddings.services import embedding_model_register_default

        if settings.MODELS_CONFIG:
            call_command("load_models", str(settings.MODELS_CONFIG), stdout=self.stdout)
        embedding_model_register_default()
        if ModelEndpoint.objects.filter(kind=ModelEndpoint.Kind.CHAT).exists():
            return
        from workers.runtime.specs import ChatMessage
        from workers.runtime.tiny import make_tiny_model, overfit_tiny_model

        self.stdout.write("No model configured: creating the tiny demo model (a few seconds)…")
        path = make_tiny_model(Path(settings.MODELS_DIR) / "tiny-tigerbot", family="tigerbot")
        greetings = [("你好", "你好！我是 TigerPlatform 的演示模型。"),
                     ("Hello", "Hello! I am the TigerPlatform demo model.")]
        overfit_tiny_model(path, conversations=[
            [ChatMessage(role="user", content=q), ChatMessage(role="assistant", content=a)] for q, a in greetings
        ])
        model_endpoint_register(name="tiny-tigerbot", family="tigerbot", path=str(path), is_default=True,
                                max_new_tokens=64, max_input_tokens=1024)

    @staticmethod
    def _create() -> dict[str, str]:
        admin_password = secrets.token_urlsafe(12)
        account_services.user_get_or_create(username="admin", staff=True, password=admin_password)
        demo = account_services.user_get_or_create(username="demo")
        created = account_services.api_key_create(owner=demo, name="demo")
        return {
            "admin_user": "admin", "admin_password": admin_password,
            "api_user": demo.get_username(), "api_key": created.plaintext,
        }
