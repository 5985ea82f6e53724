from django.apps import AppConfig


class RerankConfig(AppConfig):
    name = "apps.rerank"
    label = "rerank"
    verbose_name = "Rerank"
