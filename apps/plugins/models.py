"""Rethink plugins: a searchable collection of documents (built-in or a user's own) with its hybrid index."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.ids import new_id
from apps.core.job_states import JobStateManager, JobStatus


def new_plugin_id() -> str:
    return new_id("plg")


def new_document_id() -> str:
    return new_id("doc")


def new_run_id() -> str:
    return new_id("ingest")


class Plugin(models.Model):
    class Kind(models.TextChoices):
        LAW = "law"
        WIKI = "wiki"
        FINANCE = "finance"
        GENERIC = "generic"

    class Status(models.TextChoices):
        READY = "ready"
        INDEXING = "indexing"

    class DenseStatus(models.TextChoices):
        READY = "ready"
        QUEUED = "queued"
        BUILDING = "building"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=new_plugin_id, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="plugins",
        help_text="Empty for a built-in plugin (visible to everyone).",
    )
    builtin = models.BooleanField(default=False)
    slug = models.SlugField(max_length=100, allow_unicode=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    kind = models.CharField(
        max_length=10,
        choices=Kind.choices,
        default=Kind.GENERIC,
        help_text="Retrieval profile (chunking, BM25 and fusion weights).",
    )
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text="Default query parameters: top_k, tfidf_weight, embedding_weight, prompt_prefix, show_search_result.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    index_version = models.PositiveIntegerField(default=0, help_text="Bumped after every save of the index.")
    embedding_model = models.CharField(
        max_length=100,
        blank=True,
        help_text="The embedding model (a registered embedding endpoint's name) of "
        "the dense side; changing it re-embeds the plugin in the "
        "background.",
    )
    dense_status = models.CharField(
        max_length=10,
        choices=DenseStatus.choices,
        default=DenseStatus.READY,
        help_text="The dense side: until ready, searches rank by BM25 alone.",
    )
    dense_done = models.PositiveIntegerField(default=0, help_text="Chunks embedded in the current dense build.")
    dense_total = models.PositiveIntegerField(default=0, help_text="Chunks the current dense build embeds.")
    dense_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    objects = JobStateManager("status", "dense_status")  # logs each state change (apps/core/job_states.py)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "slug"], name="plugin_slug_unique_per_owner"),
            models.UniqueConstraint(fields=["slug"], condition=Q(owner__isnull=True), name="builtin_slug_unique"),
        ]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.slug} ({self.id})"


class IngestRun(models.Model):
    """One batch of documents going into a plugin's index; ``done``/``total`` is its progress."""

    Status = JobStatus

    id = models.CharField(primary_key=True, max_length=40, default=new_run_id, editable=False)
    plugin = models.ForeignKey(Plugin, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    chunks = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    objects = JobStateManager("status")  # logs each state change (apps/core/job_states.py)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.id} ({self.status} {self.done}/{self.total})"


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        PROCESSED = "processed"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=40, default=new_document_id, editable=False)
    plugin = models.ForeignKey(Plugin, on_delete=models.CASCADE, related_name="documents")
    run = models.ForeignKey(IngestRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="documents")
    external_id = models.CharField(max_length=255, help_text="The id search results report (corpus id or file name).")
    title = models.CharField(max_length=500, blank=True)
    url = models.CharField(max_length=1000, blank=True)
    text = models.TextField(blank=True)
    meta = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=255, blank=True, help_text="The uploaded or imported file name.")
    file = models.FileField(
        upload_to="plugins/uploads/%Y/%m/",
        blank=True,
        help_text="The uploaded binary (PDF), until its text is extracted.",
    )
    content_hash = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["plugin", "external_id"], name="document_external_id_unique")]
        indexes = [models.Index(fields=["plugin", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.id})"


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    enabled = models.BooleanField(default=True, help_text="A disabled segment is kept but out of search.")
    edited = models.BooleanField(
        default=False, help_text="The text was edited: it differs from the document's [start:end]."
    )

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_ordinal_unique")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"
