import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tigerplatform.settings")
application = get_wsgi_application()

# Imported once Django is set up. A no-op with a broker: there `celery beat` (or `worker -B`) runs the schedule.
from apps.core.embedded_beat import start_embedded_beat  # noqa: E402
from tigerplatform.celery import app as celery_app  # noqa: E402

start_embedded_beat(celery_app)
