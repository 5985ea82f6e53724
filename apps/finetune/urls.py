from django.urls import path

from apps.finetune import views

urlpatterns = [
    path("files", views.FileListCreateApi.as_view(), name="file-list"),
    path("files/<str:file_id>", views.FileDetailApi.as_view(), name="file-detail"),
    path("files/<str:file_id>/content", views.FileContentApi.as_view(), name="file-content"),
    path("fine_tuning/jobs", views.JobListCreateApi.as_view(), name="ft-job-list"),
    path("fine_tuning/jobs/<str:job_id>", views.JobDetailApi.as_view(), name="ft-job-detail"),
    path("fine_tuning/jobs/<str:job_id>/cancel", views.JobCancelApi.as_view(), name="ft-job-cancel"),
    path("fine_tuning/jobs/<str:job_id>/events", views.JobEventsApi.as_view(), name="ft-job-events"),
    path("fine_tuning/jobs/<str:job_id>/checkpoints", views.JobCheckpointsApi.as_view(), name="ft-job-checkpoints"),
    path("finetunes", views.FinetuneListCreateApi.as_view(), name="finetune-list"),
    path("finetunes/<str:job_id>", views.FinetuneDetailApi.as_view(), name="finetune-detail"),
    path("finetunes/<str:job_id>/online", views.FinetuneOnlineApi.as_view(), name="finetune-online"),
    path("finetunes/<str:job_id>/offline", views.FinetuneOfflineApi.as_view(), name="finetune-offline"),
    path("finetunes/<str:job_id>/cancel", views.FinetuneCancelApi.as_view(), name="finetune-cancel"),
    path("finetunes/<str:job_id>/resume", views.FinetuneResumeApi.as_view(), name="finetune-resume"),
    path("finetunes/<str:job_id>/chat", views.FinetuneChatApi.as_view(), name="finetune-chat"),
]
