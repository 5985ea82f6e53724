from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.core.views import HealthzApi, ReadyzApi
from apps.metrics.views import metrics_view

handler400 = "apps.core.errors.json_400"
handler403 = "apps.core.errors.json_403"
handler404 = "apps.core.errors.json_404"
handler500 = "apps.core.errors.json_500"

v1 = [
    path("", include("apps.accounts.urls")),
    path("", include("apps.usage.urls")),
    path("", include("apps.chat.urls")),
    path("", include("apps.completions.urls")),
    path("", include("apps.text.urls")),
    path("", include("apps.finetune.urls")),
    path("", include("apps.embeddings.urls")),
    path("", include("apps.rerank.urls")),
    path("", include("apps.search.urls")),
    path("", include("apps.plugins.urls")),
    path("", include("apps.batches.urls")),
    path("", include("apps.images.urls")),
]

legacy = [
    path("", include("apps.chat.legacy_urls")),
    path("", include("apps.finetune.legacy_urls")),
    path("", include("apps.plugins.legacy_urls")),
    path("", include("apps.images.legacy_urls")),
]

urlpatterns = [
    path("healthz", HealthzApi.as_view(), name="healthz"),
    path("readyz", ReadyzApi.as_view(), name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("v1/", include(v1)),
    path("bot-service/", include(legacy)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[], authentication_classes=[]),
        name="docs",
    ),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(
            url_name="schema", template_name="core/redoc.html", permission_classes=[], authentication_classes=[]
        ),
        name="redoc",
    ),
]
