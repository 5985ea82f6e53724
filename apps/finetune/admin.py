from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.core.admin import ReadOnlyInline, act_on_each
from apps.finetune.models import FineTuneCheckpoint, FineTunedModel, FineTuneEvent, FineTuneJob, TrainingFile
from apps.finetune.services import deployment, jobs


def _pretty(value: object) -> SafeString:
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


@admin.register(TrainingFile)
class TrainingFileAdmin(admin.ModelAdmin):
    list_display = ["id", "filename", "owner", "format", "total", "bytes", "created_at"]
    search_fields = ["id", "filename", "owner__username"]
    readonly_fields = [
        "id",
        "owner",
        "filename",
        "bytes",
        "purpose",
        "file",
        "format",
        "total",
        "valid_count",
        "validation_pretty",
        "created_at",
    ]
    exclude = ["validation"]

    @admin.display(description="Validation")
    def validation_pretty(self, obj: TrainingFile) -> SafeString:
        return _pretty(obj.validation)


class EventInline(ReadOnlyInline):
    model = FineTuneEvent
    readonly_fields = ("created_at", "level", "message")
    fields = readonly_fields
    ordering = ["-created_at"]


class CheckpointInline(ReadOnlyInline):
    model = FineTuneCheckpoint
    readonly_fields = ("step", "path", "created_at")
    fields = readonly_fields


def loss_curve_svg(points: list[tuple[float, float]], *, width: int = 480, height: int = 160) -> SafeString:
    """An inline SVG polyline of (step, loss): no charting library, no JavaScript."""
    if len(points) < 2:
        return format_html("<em>{}</em>", "not enough steps yet")
    steps, losses = [p[0] for p in points], [p[1] for p in points]
    span_x, low, span_y = (max(steps) - min(steps)) or 1, min(losses), (max(losses) - min(losses)) or 1
    coords = " ".join(
        f"{(s - min(steps)) / span_x * (width - 20) + 10:.1f},{height - 10 - (v - low) / span_y * (height - 20):.1f}"
        for s, v in points
    )
    return format_html(
        '<svg width="{}" height="{}" style="background:#fafafa;border:1px solid #ddd">'
        '<polyline fill="none" stroke="#c0392b" stroke-width="2" points="{}"/></svg>'
        "<div>loss {:.4f} → {:.4f} over steps {}–{}</div>",
        width,
        height,
        coords,
        losses[0],
        losses[-1],
        min(steps),
        max(steps),
    )


@admin.register(FineTuneJob)
class FineTuneJobAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "base_model", "method", "status", "step", "created_at", "finished_at"]
    list_filter = ["status", "method", "base_model"]
    search_fields = ["id", "name", "owner__username"]
    readonly_fields = [
        "id",
        "owner",
        "name",
        "base_model",
        "method",
        "training_file",
        "validation_file",
        "suffix",
        "status",
        "loss_curve",
        "progress_pretty",
        "report_pretty",
        "error_pretty",
        "hyperparameters",
        "metrics",
        "trained_tokens",
        "output_dir",
        "cancel_requested",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "heartbeat_at",
    ]
    exclude = ["progress", "report", "error"]
    inlines = [CheckpointInline, EventInline]
    actions = ["cancel_selected"]

    @admin.display(description="Step")
    def step(self, obj: FineTuneJob) -> str:
        return f"{obj.progress.get('step', '–')}/{obj.progress.get('total_steps', '–')}"

    @admin.display(description="Loss curve")
    def loss_curve(self, obj: FineTuneJob) -> SafeString:
        points = [
            (float(e.data["step"]), float(e.data["train_loss"]))
            for e in obj.events.filter(type="metrics").order_by("created_at")
            if e.data and e.data.get("train_loss") is not None and e.data.get("step") is not None
        ]
        return loss_curve_svg(points)

    @admin.display(description="Progress")
    def progress_pretty(self, obj: FineTuneJob) -> SafeString:
        return _pretty(obj.progress)

    @admin.display(description="Dataset report (with a preview of examples)")
    def report_pretty(self, obj: FineTuneJob) -> SafeString:
        return _pretty(obj.report)

    @admin.display(description="Error")
    def error_pretty(self, obj: FineTuneJob) -> SafeString:
        return _pretty(obj.error)

    @admin.action(description="Cancel selected jobs")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[FineTuneJob]) -> None:
        act_on_each(self, request, queryset, act=lambda job: jobs.finetune_job_cancel(job=job))


@admin.register(FineTunedModel)
class FineTunedModelAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "base_model", "online", "created_at", "deleted_at"]
    list_filter = ["online", "base_model"]
    readonly_fields = ["name", "owner", "job", "base_model", "adapter_path", "weights_path", "created_at", "deleted_at"]
    actions = ["bring_online", "take_offline"]

    @admin.action(description="Bring online")
    def bring_online(self, request: HttpRequest, queryset: QuerySet[FineTunedModel]) -> None:
        # A refusal (e.g. the vLLM serving its base refused the adapter) is an error, not a warning.
        act_on_each(
            self,
            request,
            queryset,
            act=lambda model: deployment.fine_tuned_model_set_online(model=model, online=True),
            level=messages.ERROR,
        )

    @admin.action(description="Take offline")
    def take_offline(self, request: HttpRequest, queryset: QuerySet[FineTunedModel]) -> None:
        for model in queryset:
            deployment.fine_tuned_model_set_online(model=model, online=False)
