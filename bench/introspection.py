"""What the introspection rows introspect: ``python -m bench.introspection``.

Run with the server's environment (its DATABASE_URL and SECRET_HASH_KEY), after ``createclient
bench``. Prints one JSON line: a live access token of the bench client (signed as the token
endpoint signs, valid for ACCESS_TOKEN_TTL) and an API key of it, made by the service the API,
admin and CLI use (``api_key_create``).
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    import django

    django.setup()
    from clients.models import Client
    from clients.services import api_key_create
    from tokens.claims import Grant
    from tokens.issuing import issue_access_token

    client = Client.objects.get(client_id="bench")
    grant = Grant(scopes=("invoices:read",), audience=("https://api.example.com",), tenants=(), roles=())
    token = issue_access_token(client=client, grant=grant)
    key = api_key_create(client=client, name="bench", scopes=["invoices:read"])
    print(json.dumps({"access_token": token.access_token, "api_key": key.api_key}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
