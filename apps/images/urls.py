from django.urls import path

from apps.images.views import ImageFileApi, ImageGenerationDetailApi, ImageGenerationsApi

urlpatterns = [
    path("images/generations", ImageGenerationsApi.as_view(), name="images-generations"),
    path("images/generations/<str:job_id>", ImageGenerationDetailApi.as_view(), name="images-generation-detail"),
    path("images/files/<str:image_id>", ImageFileApi.as_view(), name="image-file"),
]
