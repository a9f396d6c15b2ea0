"""Seed authserver's database with many clients: ``python -m bench.registry COUNT SAMPLE OUT.json``.

Run with the server's environment (its DATABASE_URL and SECRET_HASH_KEY). Each client is made
by the same service the CLI, admin and API use (``client_create``), gets a second live secret
(``secret_add``, as during a rotation), one of 100 tenants and two roles. ``SAMPLE`` clients,
spread evenly over the registry, are written with one of their real secrets (alternately the
first and the second) to OUT.json for the load generator.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

TENANTS = 100


def seed(count: int, sample: int) -> list[dict[str, str]]:
    from django.db import transaction

    from clients.services import client_create, secret_add

    step = max(1, count // max(1, sample))
    chosen: list[dict[str, str]] = []
    # One transaction: no commit (and no fsync) per client.
    with transaction.atomic():
        for index in range(count):
            tenant = f"tenant-{index % TENANTS:03d}"
            client, first = client_create(
                name=f"Bench client {index}",
                client_id=f"bench-{index:06d}",
                allowed_scopes=["invoices:read", "invoices:write"],
                tenants=[tenant],
                roles=["auditor", f"{tenant}/reader"],
            )
            second = secret_add(client=client)
            if index % step == 0 and len(chosen) < sample:
                secret = (first if len(chosen) % 2 == 0 else second).secret
                chosen.append({"client_id": client.client_id, "client_secret": secret})
    return chosen


def main(argv: list[str]) -> int:
    import django

    django.setup()
    count, sample, out = int(argv[0]), int(argv[1]), Path(argv[2])
    started = time.monotonic()
    chosen = seed(count, sample)
    out.write_text(json.dumps(chosen))
    print(f"seeded {count} clients in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
