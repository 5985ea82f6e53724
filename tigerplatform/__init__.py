"""Project package (the design card's ``platform/``; renamed so it cannot shadow the stdlib module)."""

from tigerplatform.celery import app as celery_app

__all__ = ["celery_app"]
