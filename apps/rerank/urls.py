from django.urls import path

from apps.rerank.views import RerankApi

urlpatterns = [path("rerank", RerankApi.as_view(), name="rerank")]
