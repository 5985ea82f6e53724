from django.urls import path

from apps.accounts.views import ApiKeyDetailApi, ApiKeyListCreateApi

urlpatterns = [
    path("api_keys", ApiKeyListCreateApi.as_view(), name="api-key-list"),
    path("api_keys/<str:key_id>", ApiKeyDetailApi.as_view(), name="api-key-detail"),
]
