from django.urls import path

from apps.chat.model_views import ModelDetailApi
from apps.chat.views import ChatCompletionsApi, ModelListApi

urlpatterns = [
    path("models", ModelListApi.as_view(), name="model-list"),
    path("models/<path:model_id>", ModelDetailApi.as_view(), name="model-detail"),
    path("chat/completions", ChatCompletionsApi.as_view(), name="chat-completions"),
]
