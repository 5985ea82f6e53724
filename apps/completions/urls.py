from django.urls import path

from apps.completions.views import CompletionsApi

urlpatterns = [path("completions", CompletionsApi.as_view(), name="completions")]
