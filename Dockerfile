# authserver: gunicorn as in production (README "Container").  Build: docker build -t authserver .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    BIND=0.0.0.0:8000

WORKDIR /app

# The server's requirements only (never requirements-dev.txt), in their own layer so that a
# code change reuses it.  Every package has a wheel for this base: no compiler needed.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# Code owned by root and read-only to the server's user; /data is the one place it may write
# (a SQLite database there, for a trial run: DATABASE_URL=sqlite:////data/db.sqlite3).
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin authserver \
 && mkdir /data && chown authserver /data
COPY . .

# The admin's assets, compressed for WhiteNoise.  No secret or ISSUER is needed here: settings
# load on their defaults, and collectstatic runs only the staticfiles checks (the SECRET_KEY and
# ISSUER checks run when the server starts, on the runtime environment), so nothing made up for
# the build can reach the image.
RUN python manage.py collectstatic --noinput

USER authserver
EXPOSE 8000
# /healthz answers while the process lives (README "Production"); slim has no curl.  The Host is
# the ISSUER's, which ALLOWED_HOSTS always holds.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.parse, urllib.request; port = os.environ['BIND'].rpartition(':')[2]; host = urllib.parse.urlsplit(os.environ['ISSUER']).netloc; urllib.request.urlopen(urllib.request.Request(f'http://127.0.0.1:{port}/healthz', headers={'Host': host}), timeout=2)"]
# gunicorn drains on SIGTERM within graceful_timeout (20 s): stop with a longer timeout
# (docker stop -t 30, compose's stop_grace_period) or the engine kills it at 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/bin/serve"]
