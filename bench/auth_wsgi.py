"""WSGI entry for bench/auth_overhead.py: the platform's settings with the bench's two endpoints as URLs."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tigerplatform.settings")

from django.conf import settings
from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
settings.ROOT_URLCONF = "bench.auth_app"
