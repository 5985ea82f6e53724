from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and API keys"

    def ready(self) -> None:
        from apps.accounts import signals  # noqa: F401
