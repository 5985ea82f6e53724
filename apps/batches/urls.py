from django.urls import path

from apps.batches import views

urlpatterns = [
    path("batches", views.BatchListCreateApi.as_view(), name="batch-list"),
    path("batches/<str:batch_id>", views.BatchDetailApi.as_view(), name="batch-detail"),
    path("batches/<str:batch_id>/cancel", views.BatchCancelApi.as_view(), name="batch-cancel"),
]
