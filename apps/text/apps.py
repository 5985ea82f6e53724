from django.apps import AppConfig


class TextConfig(AppConfig):
    name = "apps.text"
    label = "text"
    verbose_name = "pdf2text and summarization"

    def ready(self) -> None:
        from django.conf import settings

        from tigerplatform.celery import app

        # Picked up by `celery -A tigerplatform beat`; without beat, reading a job checks it too.
        schedule = dict(app.conf.beat_schedule or {})
        schedule.setdefault("text-fail-stale-jobs", {
            "task": "text.maintenance.fail_stale_jobs",
            "schedule": float(settings.TEXT_SWEEP_INTERVAL_S),
        })
        app.conf.beat_schedule = schedule
