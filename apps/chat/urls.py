from django.urls import path

from apps.chat.views import ModelListApi

urlpatterns = [path("models", ModelListApi.as_view(), name="model-list")]
