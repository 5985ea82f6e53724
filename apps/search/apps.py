from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "apps.search"
    label = "search"
    verbose_name = "Search"

    def ready(self) -> None:
        from apps.chat.augment import search_augmenter
        from apps.search.augment import augment_chat_with_search

        search_augmenter.append(augment_chat_with_search)
