from django.urls import path

from apps.images.views import LegacyText2ImageApi

urlpatterns = [path("ai_service/text2image", LegacyText2ImageApi.as_view(), name="legacy-text2image")]
