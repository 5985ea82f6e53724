from django.urls import path

from apps.chat.views import ChatCompletionsApi, ModelListApi

urlpatterns = [
    path("models", ModelListApi.as_view(), name="model-list"),
    path("chat/completions", ChatCompletionsApi.as_view(), name="chat-completions"),
]
