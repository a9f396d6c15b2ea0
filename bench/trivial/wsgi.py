"""WSGI entry point of the trivial project (``gunicorn bench.trivial.wsgi``)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.trivial.settings")
application = get_wsgi_application()
