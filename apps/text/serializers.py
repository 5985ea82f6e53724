from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse
from rest_framework import serializers
from rest_framework.request import Request

from apps.text.models import JobStatus, Pdf2TextJob, SummarizationJob, TextJob
from workers.pdf import PAGE_SEPARATOR

LANGUAGES = ["auto", "zh", "en"]


class WaitQuerySerializer(serializers.Serializer):
    wait = serializers.FloatField(
        required=False,
        min_value=0,
        default=0,
        help_text="Seconds to wait for the job to finish before answering (at most 30).",
    )


# --- Input ------------------------------------------------------------------------------------------------


class Pdf2TextCreateInputSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, use_url=False, help_text="The PDF.")
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=500,
        default="",
        help_text="User or owner password of an encrypted PDF.",
    )
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
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=500,
        default="",
        help_text="Password of an encrypted PDF.",
    )


class SummarizationTextInputSerializer(_SummarizationOptionsSerializer):
    text = serializers.CharField(allow_blank=True, trim_whitespace=False, help_text="The text to summarise.")


class SummarizationCreateInputSerializer(SummarizationFileInputSerializer):
    """Either ``file`` (multipart) or ``text`` (JSON or form); the service insists on exactly one."""

    file = serializers.FileField(required=False, allow_empty_file=True, use_url=False)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


# --- Output -----------------------------------------------------------------------------------------------


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


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
    id = serializers.CharField()
    object = serializers.CharField(default="pdf2text")
    status = serializers.ChoiceField(choices=JobStatus.choices)
    filename = serializers.CharField()
    bytes = serializers.IntegerField()
    pdf_url = serializers.URLField(help_text="GET it (with your API key) for the original PDF.")
    page_selection = serializers.CharField(allow_null=True)
    layout = serializers.BooleanField()
    created_at = serializers.IntegerField()
    started_at = serializers.IntegerField(allow_null=True)
    finished_at = serializers.IntegerField(allow_null=True)
    page_count = serializers.IntegerField(allow_null=True)
    error = JobErrorSerializer(allow_null=True)


class Pdf2TextDetailOutputSerializer(Pdf2TextOutputSerializer):
    pages = PageTextSerializer(many=True, required=False, help_text="When succeeded: the selected pages.")
    text = serializers.CharField(required=False, help_text="When succeeded: the pages joined by a form feed.")
    metadata = PdfMetadataSerializer(required=False)


class Pdf2TextListOutputSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = Pdf2TextOutputSerializer(many=True)
    first_id = serializers.CharField(allow_null=True)
    last_id = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


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
    total_tokens = serializers.IntegerField()


class SummarizationOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="summarization")
    status = serializers.ChoiceField(choices=JobStatus.choices)
    model = serializers.CharField()
    source = serializers.ChoiceField(choices=SummarizationJob.Source.choices)
    filename = serializers.CharField(allow_null=True)
    file_url = serializers.URLField(allow_null=True)
    language = serializers.CharField()
    max_length = serializers.IntegerField(allow_null=True)
    created_at = serializers.IntegerField()
    started_at = serializers.IntegerField(allow_null=True)
    finished_at = serializers.IntegerField(allow_null=True)
    summary = serializers.CharField(allow_null=True)
    progress = ProgressSerializer(allow_null=True)
    steps = StepSerializer(many=True)
    usage = SummarizationUsageSerializer()
    error = JobErrorSerializer(allow_null=True)


class SummarizationListOutputSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = SummarizationOutputSerializer(many=True)
    first_id = serializers.CharField(allow_null=True)
    last_id = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


def _timestamp(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def _common(job: TextJob) -> dict[str, Any]:
    return {
        "created_at": _timestamp(job.created_at),
        "started_at": _timestamp(job.started_at),
        "finished_at": _timestamp(job.finished_at),
    }


def _error(job: TextJob) -> dict[str, str] | None:
    if job.status != JobStatus.FAILED:
        return None
    return {"code": job.error_code, "message": job.error_message}


def render_pdf2text(job: Pdf2TextJob, *, request: Request, detail: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.pk,
        "object": "pdf2text",
        "status": job.status,
        "filename": job.filename,
        "bytes": job.size_bytes,
        "pdf_url": request.build_absolute_uri(reverse("pdf2text-file", args=[job.pk])),
        "page_selection": job.pages or None,
        "layout": job.layout,
        **_common(job),
        "page_count": job.page_count,
        "error": _error(job),
    }
    if detail and job.result is not None:
        if job.status == JobStatus.SUCCEEDED:
            pages = job.result.get("pages", [])
            body["pages"] = pages
            body["text"] = PAGE_SEPARATOR.join(page["text"] for page in pages)
        body["metadata"] = job.result.get("metadata")
    return body


def render_summarization(job: SummarizationJob, *, request: Request) -> dict[str, Any]:
    has_file = bool(job.file)
    return {
        "id": job.pk,
        "object": "summarization",
        "status": job.status,
        "model": job.model,
        "source": job.source,
        "filename": job.filename or None,
        "file_url": request.build_absolute_uri(reverse("summarization-file", args=[job.pk])) if has_file else None,
        "language": job.language or "auto",
        "max_length": job.max_length,
        **_common(job),
        "summary": job.summary if job.status == JobStatus.SUCCEEDED else None,
        "progress": job.progress,
        "steps": job.steps,
        "usage": {
            "prompt_tokens": job.prompt_tokens,
            "completion_tokens": job.completion_tokens,
            "total_tokens": job.prompt_tokens + job.completion_tokens,
        },
        "error": _error(job),
    }
