from django.apps import AppConfig


class FinetuneConfig(AppConfig):
    name = "apps.finetune"
    label = "finetune"
    verbose_name = "Fine-tuning"

    def ready(self) -> None:
        from apps.chat import model_services as chat_model_services
        from apps.chat import selectors as chat_selectors
        from apps.finetune.selectors import fine_tuned_models_for_listing, fine_tuned_served_model
        from apps.finetune.services import fine_tuned_model_delete_owned

        chat_selectors.extra_model_resolvers.append(fine_tuned_served_model)
        chat_selectors.extra_model_listers.append(fine_tuned_models_for_listing)
        chat_model_services.extra_model_deleters.append(fine_tuned_model_delete_owned)
