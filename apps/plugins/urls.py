from django.urls import path

from apps.plugins import dify, views

PLUGIN = "plugin/custom/plugins/<str:plugin_id>"
FILE = f"{PLUGIN}/files/<str:file_id>"

urlpatterns = [
    path("plugin/plugins", views.PluginAvailableListApi.as_view(), name="plugin-available-list"),
    path("plugin/custom/plugins", views.PluginListCreateApi.as_view(), name="plugin-list"),
    path(PLUGIN, views.PluginDetailApi.as_view(), name="plugin-detail"),
    path(f"{PLUGIN}/files", views.PluginFilesApi.as_view(), name="plugin-files"),
    path(FILE, views.PluginFileDetailApi.as_view(), name="plugin-file-detail"),
    path(f"{FILE}/segments", views.SegmentListApi.as_view(), name="plugin-segments"),
    path(f"{FILE}/segments/<str:segment_id>", views.SegmentDetailApi.as_view(), name="plugin-segment-detail"),
    path(f"{PLUGIN}/segments/preview", views.SegmentPreviewApi.as_view(), name="plugin-segments-preview"),
    path("plugin/search", views.PluginSearchApi.as_view(), name="plugin-search"),
    path("plugin/chat", views.PluginChatApi.as_view(), name="plugin-chat"),
    path("dify/retrieval", dify.DifyRetrievalApi.as_view(), name="dify-retrieval"),
]
