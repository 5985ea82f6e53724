from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "apps.metrics"
    label = "metrics"

    def ready(self) -> None:
        from apps.metrics import celery_jobs, worker_exporter

        celery_jobs.connect()
        worker_exporter.connect()
