from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "apps.chat"
    label = "chat"
    verbose_name = "Models and chat"

    def ready(self) -> None:
        from apps.chat.selectors import local_model_spec
        from workers.runtime import engine

        engine.spec_localizer = local_model_spec  # fine-tuned weights in shared storage load from a local copy
