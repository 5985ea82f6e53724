from django.urls import path

from apps.plugins import views

urlpatterns = [
    path("plugin/custom/create", views.LegacyCreateApi.as_view(), name="legacy-plugin-create"),
    path("plugin/custom/list", views.LegacyListApi.as_view(), name="legacy-plugin-list"),
    path("plugin/custom/delete", views.LegacyDeleteApi.as_view(), name="legacy-plugin-delete"),
    path("plugin/custom/upload", views.LegacyUploadApi.as_view(), name="legacy-plugin-upload"),
    path("ai_service/rethink", views.LegacyRethinkApi.as_view(), name="legacy-rethink"),
]
