from django.urls import path

from apps.finetune import legacy_views

urlpatterns = [
    path("ft/upload_train_data", legacy_views.LegacyUploadTrainDataApi.as_view(), name="legacy-ft-upload"),
    path("ft/start_train", legacy_views.LegacyStartTrainApi.as_view(), name="legacy-ft-start"),
    path("ft/call", legacy_views.LegacyCallApi.as_view(), name="legacy-ft-call"),
    path("ft/online", legacy_views.LegacyOnlineApi.as_view(), name="legacy-ft-online"),
    path("ft/offline", legacy_views.LegacyOfflineApi.as_view(), name="legacy-ft-offline"),
    path("ft/get_fine_tune_list", legacy_views.LegacyListApi.as_view(), name="legacy-ft-list"),
]
