"""``manage.py createapikey CLIENT_ID --name NAME``: give a client an API key and print it once."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from authserver.durations import parse_duration
from clients.audit import acting_as
from clients.models import Client
from clients.services import api_key_create

_OPTION_NAMES = {"name": "--name", "scope": "--scope", "expires_in": "--expires-in", "expires": "--expires-in"}


class Command(BaseCommand):
    help = (
        "Create an API key (a long-lived bearer credential, DESIGN §9.5) for a client and print it. "
        "The key is shown only this once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client_id", help="The client the key belongs to.")
        parser.add_argument("--name", required=True, help="What the key is for, e.g. the job that uses it.")
        parser.add_argument(
            "--scope", action="append",
            help="A scope the key carries, allowed for the client (repeatable; default: the client's default scopes).",
        )
        parser.add_argument(
            "--expires-in", help="Lifetime, e.g. 12h or 90d (default API_KEY_DEFAULT_LIFETIME, at most "
            "API_KEY_MAX_LIFETIME).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        with acting_as("cli"):
            self._handle(options)

    def _handle(self, options: dict[str, Any]) -> None:
        client = Client.objects.filter(client_id=options["client_id"]).first()
        if client is None:
            raise CommandError(f"No client {options['client_id']!r}.")
        expires_in = None
        if options["expires_in"] is not None:
            try:
                expires_in = parse_duration(options["expires_in"])
            except ValueError as error:
                raise CommandError(f"--expires-in: {error}") from None
        scopes = [item for value in options["scope"] or [] for item in value.split()] if options["scope"] else None
        try:
            issued = api_key_create(client=client, name=options["name"], scopes=scopes, expires_in=expires_in)
        except ValidationError as error:
            raise CommandError(
                "; ".join(f"{_OPTION_NAMES.get(k, k)}: {' '.join(v)}" for k, v in error.message_dict.items())
            ) from None
        record = issued.record
        if options["json"]:
            self.stdout.write(json.dumps({
                "client_id": client.client_id, "api_key": issued.api_key, "prefix": record.prefix,
                "name": record.name, "scope": " ".join(record.scopes), "expires": record.expires.isoformat(),
            }))
        else:
            self.stdout.write(f"Client ID: {client.client_id}")
            self.stdout.write(f"API key: {issued.api_key}")
            self.stdout.write(f"Scope: {' '.join(record.scopes)}")
            self.stdout.write(f"Expires: {record.expires.isoformat()}")
            self.stderr.write("Store the key now: it is not shown again.")
