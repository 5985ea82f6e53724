from django.urls import path

from apps.plugins import dify, views

urlpatterns = [
    path("plugin/plugins", views.PluginAvailableListApi.as_view(), name="plugin-available-list"),
    path("plugin/custom/plugins", views.PluginListCreateApi.as_view(), name="plugin-list"),
    path("plugin/custom/plugins/<str:plugin_id>", views.PluginDetailApi.as_view(), name="plugin-detail"),
    path("plugin/custom/plugins/<str:plugin_id>/files", views.PluginFilesApi.as_view(), name="plugin-files"),
    path(
        "plugin/custom/plugins/<str:plugin_id>/files/<str:file_id>",
        views.PluginFileDetailApi.as_view(),
        name="plugin-file-detail",
    ),
    path(
        "plugin/custom/plugins/<str:plugin_id>/files/<str:file_id>/segments",
        views.SegmentListApi.as_view(),
        name="plugin-segments",
    ),
    path(
        "plugin/custom/plugins/<str:plugin_id>/files/<str:file_id>/segments/<str:segment_id>",
        views.SegmentDetailApi.as_view(),
        name="plugin-segment-detail",
    ),
    path(
        "plugin/custom/plugins/<str:plugin_id>/segments/preview",
        views.SegmentPreviewApi.as_view(),
        name="plugin-segments-preview",
    ),
    path("plugin/search", views.PluginSearchApi.as_view(), name="plugin-search"),
    path("plugin/chat", views.PluginChatApi.as_view(), name="plugin-chat"),
    path("dify/retrieval", dify.DifyRetrievalApi.as_view(), name="dify-retrieval"),
]
