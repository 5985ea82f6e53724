from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "apps.images"
    label = "images"
    verbose_name = "Text-to-image"

    def ready(self) -> None:
        from django.conf import settings

        from tigerplatform.celery import app

        # Picked up by `celery -A tigerplatform beat`; without beat, reading a job checks it too.
        schedule = dict(app.conf.beat_schedule or {})
        schedule.setdefault("images-fail-stale-jobs", {
            "task": "images.maintenance.fail_stale_jobs",
            "schedule": float(settings.TEXT_SWEEP_INTERVAL_S),
        })
        app.conf.beat_schedule = schedule
