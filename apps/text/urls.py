from django.urls import path

from apps.text.views import (
    Pdf2TextDetailApi,
    Pdf2TextFileApi,
    Pdf2TextListCreateApi,
    SummarizationDetailApi,
    SummarizationFileApi,
    SummarizationListCreateApi,
)

urlpatterns = [
    path("pdf2text", Pdf2TextListCreateApi.as_view(), name="pdf2text-list"),
    path("pdf2text/<str:job_id>", Pdf2TextDetailApi.as_view(), name="pdf2text-detail"),
    path("pdf2text/<str:job_id>/file", Pdf2TextFileApi.as_view(), name="pdf2text-file"),
    path("summarization", SummarizationListCreateApi.as_view(), name="summarization-list"),
    path("summarization/<str:job_id>", SummarizationDetailApi.as_view(), name="summarization-detail"),
    path("summarization/<str:job_id>/file", SummarizationFileApi.as_view(), name="summarization-file"),
]
