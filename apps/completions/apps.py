from django.apps import AppConfig


class CompletionsConfig(AppConfig):
    name = "apps.completions"
    label = "completions"
    default_auto_field = "django.db.models.BigAutoField"
