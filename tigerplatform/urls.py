from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.core.views import HealthzApi, ReadyzApi
from apps.metrics.views import metrics_view

handler400 = "apps.core.errors.json_400"
handler403 = "apps.core.errors.json_403"
handler404 = "apps.core.errors.json_404"
handler500 = "apps.core.errors.json_500"

# Each app mounts its own URLconf: the OpenAI-compatible API under /v1/, TigerBot's legacy one under /bot-service/.
V1_APPS = (
    "accounts",
    "usage",
    "chat",
    "completions",
    "text",
    "finetune",
    "embeddings",
    "rerank",
    "search",
    "plugins",
    "batches",
    "images",
)
LEGACY_APPS = ("chat", "finetune", "plugins", "images")

v1 = [path("", include(f"apps.{app}.urls")) for app in V1_APPS]
legacy = [path("", include(f"apps.{app}.legacy_urls")) for app in LEGACY_APPS]

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
