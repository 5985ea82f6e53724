from django.urls import path

from apps.chat.views import LegacyGptApi

urlpatterns = [path("ai_service/gpt", LegacyGptApi.as_view(), name="legacy-gpt")]
