"""Registry pages with a large registry: the management API's client list and the admin's
changelist, in-process (Django's test client), on a fresh SQLite database.

    .venv/bin/python -m bench.pages [N]     # N clients (default 10,000), 2 secrets each

Prints the median and the slowest of 15 requests per page.  The query counts of these pages
are pinned by the test suite (they do not grow with the registry); this shows the time.
"""

from __future__ import annotations

import base64
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 10_000
    folder = tempfile.mkdtemp(prefix="authserver-pages-")
    os.environ.update(
        DATABASE_URL=f"sqlite:///{folder}/db.sqlite3", SECRET_KEY=base64.b64encode(os.urandom(40)).decode(),
        SECRET_HASH_KEY=os.urandom(32).hex(), ISSUER="http://testserver", ALLOWED_HOSTS="testserver",
        DJANGO_SETTINGS_MODULE="authserver.settings", LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import transaction
    from django.test import Client as HttpClient

    from clients import secrets as client_secrets
    from clients.models import Client, ClientSecret, Role, Tenant
    from clients.services import client_create

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    with transaction.atomic():  # bulk rows: the pages only read them
        tenants = Tenant.objects.bulk_create([Tenant(slug=f"t{i}") for i in range(100)])
        roles = Role.objects.bulk_create(
            [Role(name=f"r{i}", tenant=tenants[i % 100] if i % 2 else None) for i in range(200)]
        )
        clients = Client.objects.bulk_create([
            Client(client_id=f"svc-{i:05}", name=f"svc {i}", grant_types=["client_credentials"],
                   allowed_scopes=["a", "b"])
            for i in range(count)
        ])
        key_id, digest = client_secrets.hash_secret(client_secrets.generate_secret())
        ClientSecret.objects.bulk_create([
            ClientSecret(client=c, prefix=f"ascs_{i:07}", hash=digest, hash_key_id=key_id)
            for i, c in enumerate(clients) for _ in range(2)
        ])
        tenant_links, role_links = Client.tenants.through, Client.roles.through
        tenant_links.objects.bulk_create(
            [tenant_links(client_id=c.pk, tenant_id=tenants[i % 100].pk) for i, c in enumerate(clients)]
        )
        role_links.objects.bulk_create([
            role_links(client_id=c.pk, role_id=roles[(i + k) % 200].pk) for i, c in enumerate(clients) for k in (0, 1)
        ])
    print(f"{count:,} clients seeded in {time.perf_counter() - started:.1f} s")
    del clients
    gc.collect()  # the seeding's objects, not the pages', would otherwise be collected mid-measurement

    _, issued = client_create(name="ops", client_id="ops-bot", allowed_scopes=["clients:read"])
    api = HttpClient()
    basic = "Basic " + base64.b64encode(f"ops-bot:{issued.secret}".encode()).decode()
    token = api.post(
        "/oauth/token", "grant_type=client_credentials", content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic,
    ).json()["access_token"]
    User.objects.create_superuser("admin", "admin@example.com", "bench-only")
    admin = HttpClient()
    admin.login(username="admin", password="bench-only")

    def measure(name: str, request: Callable[[], Any], times: int = 15) -> None:
        assert request().status_code == 200
        took = []
        for _ in range(times):
            begun = time.perf_counter()
            request()
            took.append((time.perf_counter() - begun) * 1000)
        print(f"{name:42s} median {statistics.median(took):6.1f} ms   slowest {max(took):6.1f} ms")

    bearer = f"Bearer {token}"
    measure("API GET /client (first page)", lambda: api.get("/client", HTTP_AUTHORIZATION=bearer))
    measure("API GET /client?offset=9000", lambda: api.get("/client?offset=9000", HTTP_AUTHORIZATION=bearer))
    measure("admin changelist", lambda: admin.get("/admin/clients/client/"))
    measure("admin changelist, search", lambda: admin.get("/admin/clients/client/?q=svc-0999"))
    measure("admin changelist, tenant filter",
            lambda: admin.get(f"/admin/clients/client/?tenants__id__exact={tenants[3].pk}"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
