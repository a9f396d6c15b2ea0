"""Create one confidential client-credentials Application: ``python -m bench.dot.seed --hashed|--plain``.

Prints ``{"client_id": ..., "client_secret": ...}``. ``--hashed`` is DOT 3's default
(``hash_client_secret=True``: the secret is stored as a Django password hash and checked
with it on every request); ``--plain`` stores it as given.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dot.seed")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--hashed", action="store_true")
    mode.add_argument("--plain", action="store_true")
    options = parser.parse_args(argv)

    import django

    django.setup()
    from oauth2_provider.generators import generate_client_secret
    from oauth2_provider.models import get_application_model

    application_model = get_application_model()
    secret = generate_client_secret()
    application = application_model(
        name="bench",
        client_type=application_model.CLIENT_CONFIDENTIAL,
        authorization_grant_type=application_model.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=options.hashed,
    )
    application.save()
    print(json.dumps({"client_id": application.client_id, "client_secret": secret}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
