from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from apps.core.fields import BlankAsNullField, ConstantField, UnixTimeField
from apps.core.serializers import DeletedSerializer, KnownFieldsSerializer, PageSerializer
from apps.text.models import JobStatus, Pdf2TextJob, SummarizationJob, TextJob
from workers.pdf import PAGE_SEPARATOR

LANGUAGES = ["auto", "zh", "en"]


# --- Input ------------------------------------------------------------------------------------------------


def _pdf_password_field(help_text: str) -> serializers.CharField:
    return serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=500, default="", help_text=help_text
    )


class Pdf2TextCreateInputSerializer(KnownFieldsSerializer):
    file = serializers.FileField(allow_empty_file=True, use_url=False, help_text="The PDF.")
    password = _pdf_password_field("User or owner password of an encrypted PDF.")
    pages = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        default="",
        help_text="1-based pages and ranges, e.g. 1-3,5 (default: all).",
    )
    layout = serializers.BooleanField(
        required=False, default=False, help_text="Keep each page's visual layout (columns, indentation)."
    )


class _SummarizationOptionsSerializer(serializers.Serializer):
    model = serializers.CharField(required=False, max_length=200, help_text="A chat model id (default model).")
    max_length = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=32768,
        help_text="Summary length in tokens (at most the model's max_new_tokens).",
    )
    language = serializers.ChoiceField(
        choices=LANGUAGES,
        required=False,
        default="auto",
        help_text="Language of the prompts and the summary; auto = detect.",
    )


class SummarizationFileInputSerializer(_SummarizationOptionsSerializer):
    file = serializers.FileField(allow_empty_file=True, use_url=False, help_text="A PDF, .txt or .md file.")
    password = _pdf_password_field("Password of an encrypted PDF.")


class SummarizationTextInputSerializer(_SummarizationOptionsSerializer):
    text = serializers.CharField(allow_blank=True, trim_whitespace=False, help_text="The text to summarise.")


class SummarizationCreateInputSerializer(KnownFieldsSerializer, SummarizationFileInputSerializer):
    """Either ``file`` (multipart) or ``text`` (JSON or form); the service insists on exactly one. A form's other
    fields are refused as a JSON body's are (DRF's ``request.data`` holds a form's fields and its files alike)."""

    file = serializers.FileField(required=False, allow_empty_file=True, use_url=False)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


# --- Output: the one shape each body is built with ------------------------------------------------------


def _file_url(serializer: serializers.Serializer, *, view_name: str, job: TextJob) -> str:
    request: Request = serializer.context["request"]
    return request.build_absolute_uri(reverse(view_name, args=[job.pk]))


class JobErrorSerializer(serializers.Serializer):
    """A failed job's error; null otherwise."""

    code = serializers.CharField(source="error_code")
    message = serializers.CharField(source="error_message")

    def to_representation(self, instance: TextJob) -> dict[str, Any] | None:  # type: ignore[override]  # allow_null
        return super().to_representation(instance) if instance.status == JobStatus.FAILED else None


class PageTextSerializer(serializers.Serializer):
    page = serializers.IntegerField(help_text="1-based page number.")
    text = serializers.CharField()
    notes = serializers.ListField(
        child=serializers.CharField(), help_text="no_text_layer, or 'extraction_error: <reason>'."
    )


class PdfMetadataSerializer(serializers.Serializer):
    title = serializers.CharField(allow_null=True)
    author = serializers.CharField(allow_null=True)
    producer = serializers.CharField(allow_null=True)
    encrypted = serializers.BooleanField()


class Pdf2TextOutputSerializer(serializers.Serializer):
    """A pdf2text job as listed."""

    # Needs the request in its context (for pdf_url).

    id = serializers.CharField()
    object = ConstantField("pdf2text")
    status = serializers.ChoiceField(choices=JobStatus.choices)
    filename = serializers.CharField()
    bytes = serializers.IntegerField(source="size_bytes")
    pdf_url = serializers.SerializerMethodField(help_text="GET it (with your API key) for the original PDF.")
    page_selection = BlankAsNullField(source="pages")
    layout = serializers.BooleanField()
    created_at = UnixTimeField()
    started_at = UnixTimeField()
    finished_at = UnixTimeField()
    page_count = serializers.IntegerField(allow_null=True)
    error = JobErrorSerializer(source="*", allow_null=True)

    @extend_schema_field(OpenApiTypes.URI)
    def get_pdf_url(self, job: Pdf2TextJob) -> str:
        return _file_url(self, view_name="pdf2text-file", job=job)


@extend_schema_field(OpenApiTypes.STR)
class PagesTextField(serializers.Field):
    """A job's whole text. Not a method field: those are read-only, which the schema marks required, and a job
    that has not succeeded has no text."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, job: Pdf2TextJob) -> str:
        return PAGE_SEPARATOR.join(page["text"] for page in (job.result or {}).get("pages", []))


class Pdf2TextDetailOutputSerializer(Pdf2TextOutputSerializer):
    """A pdf2text job with its result: `pages` and `text` once it succeeded, `metadata` once it ran."""

    pages = PageTextSerializer(many=True, required=False, source="result.pages", help_text="The selected pages.")
    text = PagesTextField(required=False, help_text="The pages joined by a form feed.")
    metadata = PdfMetadataSerializer(required=False, source="result.metadata")

    def to_representation(self, instance: Pdf2TextJob) -> dict[str, Any]:
        body: dict[str, Any] = super().to_representation(instance)
        absent = ["pages", "text"] if instance.status != JobStatus.SUCCEEDED else []
        if instance.result is None:
            absent.append("metadata")
        for key in absent:
            body.pop(key, None)
        return body


class Pdf2TextListOutputSerializer(PageSerializer):
    data = Pdf2TextOutputSerializer(many=True)


class Pdf2TextDeletedSerializer(DeletedSerializer):
    object_name = "pdf2text"


class ProgressSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=["map", "reduce", "done"])
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class StepSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=["map", "reduce"])
    round = serializers.IntegerField()
    inputs = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    outputs = serializers.IntegerField()
    output_tokens = serializers.IntegerField()


class SummarizationUsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.SerializerMethodField()

    def get_total_tokens(self, job: SummarizationJob) -> int:
        return job.prompt_tokens + job.completion_tokens


class SummarizationOutputSerializer(serializers.Serializer):
    """A summarization job."""

    # Needs the request in its context (for file_url).

    id = serializers.CharField()
    object = ConstantField("summarization")
    status = serializers.ChoiceField(choices=JobStatus.choices)
    model = serializers.CharField()
    source = serializers.ChoiceField(choices=SummarizationJob.Source.choices)  # type: ignore[assignment]  # a field: the metaclass moves it out of the class
    filename = BlankAsNullField()
    file_url = serializers.SerializerMethodField()
    language = serializers.SerializerMethodField()
    max_length = serializers.IntegerField(allow_null=True)
    created_at = UnixTimeField()
    started_at = UnixTimeField()
    finished_at = UnixTimeField()
    summary = serializers.SerializerMethodField()
    progress = ProgressSerializer(allow_null=True)
    steps = StepSerializer(many=True)
    usage = SummarizationUsageSerializer(source="*")
    error = JobErrorSerializer(source="*", allow_null=True)

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_file_url(self, job: SummarizationJob) -> str | None:
        return _file_url(self, view_name="summarization-file", job=job) if job.file else None

    @extend_schema_field(serializers.ChoiceField(choices=LANGUAGES))
    def get_language(self, job: SummarizationJob) -> str:
        return job.language or "auto"

    def get_summary(self, job: SummarizationJob) -> str | None:
        return job.summary if job.status == JobStatus.SUCCEEDED else None


class SummarizationListOutputSerializer(PageSerializer):
    data = SummarizationOutputSerializer(many=True)


class SummarizationDeletedSerializer(DeletedSerializer):
    object_name = "summarization"
