from django.urls import path

from apps.finetune import views

urlpatterns = [
    path("ft/upload_train_data", views.LegacyUploadTrainDataApi.as_view(), name="legacy-ft-upload"),
    path("ft/start_train", views.LegacyStartTrainApi.as_view(), name="legacy-ft-start"),
    path("ft/call", views.LegacyCallApi.as_view(), name="legacy-ft-call"),
    path("ft/online", views.LegacyOnlineApi.as_view(), name="legacy-ft-online"),
    path("ft/offline", views.LegacyOfflineApi.as_view(), name="legacy-ft-offline"),
    path("ft/get_fine_tune_list", views.LegacyListApi.as_view(), name="legacy-ft-list"),
]
