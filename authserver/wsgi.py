"""WSGI entry point: ``gunicorn -c authserver/gunicorn.conf.py authserver.wsgi``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "authserver.settings")

from authserver.handlers import dispatching_application  # noqa: E402

application = dispatching_application(get_wsgi_application())

from authserver.checks import refuse_to_start_if_misconfigured  # noqa: E402

refuse_to_start_if_misconfigured()
