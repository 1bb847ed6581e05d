"""The Celery app: the execution plane.

tenant-schemas-celery records the active schema when a task is sent and
switches the worker into it before the task runs; a task sent with no tenant
active runs in `public`.
"""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = CeleryApp("triplane")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
