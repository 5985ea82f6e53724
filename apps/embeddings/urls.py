from django.urls import path

from apps.embeddings.views import EmbeddingsApi

urlpatterns = [path("embeddings", EmbeddingsApi.as_view(), name="embeddings")]
