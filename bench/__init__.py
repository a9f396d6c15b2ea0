"""Token endpoint benchmark: ``python3 dev.py bench [options]``.

What is measured. Each server runs under gunicorn exactly as authserver is deployed
(``authserver/gunicorn.conf.py``: 2 sync workers, which close the connection after each
response) on 127.0.0.1 and a fresh database, and answers client-credentials token requests
(``client_secret_basic``) from wrk for a fixed time at each concurrency (open connections;
wrk threads = min(c, 2)) after a short warm-up:

- ``authserver``: this project on SQLite (and ``authserver-postgres`` with ``--postgres``,
  ``authserver-registry`` with ``--registry N``: N more clients, requests spread over many);
- ``private_key_jwt``: the same, its client authenticating with a fresh ES256 assertion per
  request (RFC 7523, ``bench/assertions.py``) instead of a secret;
- ``trivial``: a Django view returning fixed token-shaped JSON (bench/trivial): Django's floor;
- ``node-oidc-provider``: node-oidc-provider 9 (bench/node-oidc-provider/server.mjs, 2
  ``node:cluster`` workers) issuing RS256 JWT access tokens for the same request; its
  packages are installed with ``npm ci`` on first use, and the row skipped without them;
- ``dot-plain`` / ``dot-hashed``: stock django-oauth-toolkit 3.4 (bench/dot) with plain and
  with hashed (PBKDF2, DOT's default) client secrets.

Per run: requests/s; p50 and p99 latency (wrk's own histogram); errors (a Lua check of every
response: non-2xx or no ``"access_token"`` in the body, plus requests that got no response);
server CPU ms per request (utime+stime of the gunicorn master and workers from /proc, over
the run, divided by the requests wrk counted); worker RSS after the run. The machine's CPUs
are shared by wrk and the server, as on any one-box benchmark.

``--memory N`` sends N requests to fresh workers and reports RSS growth between the first
``--memory-baseline`` (50,000) and N. Raw results go to ``.local/bench-*.json``.
"""
