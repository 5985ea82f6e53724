from django.apps import AppConfig


class FinetuneConfig(AppConfig):
    name = "apps.finetune"
    label = "finetune"
    verbose_name = "Fine-tuning"

    def ready(self) -> None:
        from apps.chat import selectors as chat_selectors
        from apps.finetune.selectors import fine_tuned_models_for_listing, fine_tuned_served_model

        chat_selectors.extra_model_resolvers.append(fine_tuned_served_model)
        chat_selectors.extra_model_listers.append(fine_tuned_models_for_listing)
