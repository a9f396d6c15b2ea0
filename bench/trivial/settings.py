"""Settings of the trivial project: DEBUG off, no database, no apps, no middleware.

What is left is Django's own request/response cycle (URL resolving, the form parser, a
JSON response), which every Django token endpoint pays before doing any work of its own.
"""

from __future__ import annotations

import os

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY", "bench-trivial-not-secret")
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "bench.trivial.urls"
WSGI_APPLICATION = "bench.trivial.wsgi.application"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
