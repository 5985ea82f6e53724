from django.apps import AppConfig


class TextConfig(AppConfig):
    name = "apps.text"
    label = "text"
    verbose_name = "pdf2text and summarization"
