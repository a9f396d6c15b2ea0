"""``manage.py createclient NAME``: register a client and print its secret once."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from authserver.durations import parse_duration
from clients.audit import acting_as
from clients.models import TokenEndpointAuthMethod
from clients.services import client_create


def _split(values: list[str] | None) -> list[str]:
    """Repeatable options also accept space-separated values: --scope "a b"."""
    return [item for value in values or [] for item in value.split()]


class Command(BaseCommand):
    help = (
        "Create an enabled confidential client allowed the client credentials grant, "
        "and print its client ID and secret. The secret is shown only this once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="A human-readable name.")
        parser.add_argument("--client-id", help="Choose the client ID (default: random).")
        parser.add_argument("--scope", action="append", help="An allowed scope (repeatable).")
        parser.add_argument(
            "--default-scope", action="append",
            help="A scope granted when a request names none (repeatable; default: all allowed).",
        )
        parser.add_argument("--tenant", action="append", help="A tenant slug (repeatable; created if missing).")
        parser.add_argument(
            "--role", action="append",
            help="A role: NAME (global) or TENANT/NAME (repeatable; created if missing).",
        )
        parser.add_argument(
            "--auth-method",
            choices=[m.value for m in TokenEndpointAuthMethod if m.value],
            default="",
            help="Restrict client authentication to one method (default: either).",
        )
        parser.add_argument("--ttl", help="Access token lifetime: 300, 90s, 10m, 1h (default: server's).")
        parser.add_argument("--audience", action="append", help="An allowed audience / RFC 8707 resource (repeatable).")
        parser.add_argument("--allow-ip", action="append", help="An allowed source CIDR (repeatable; default: any).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        with acting_as("cli"):
            self._handle(options)

    def _handle(self, options: dict[str, Any]) -> None:
        try:
            ttl = parse_duration(options["ttl"]) if options["ttl"] is not None else None
        except ValueError as error:
            raise CommandError(f"--ttl: {error}") from None
        try:
            client, issued = client_create(
                name=options["name"],
                client_id=options["client_id"],
                allowed_scopes=_split(options["scope"]),
                default_scopes=_split(options["default_scope"]),
                tenants=_split(options["tenant"]),
                roles=_split(options["role"]),
                token_endpoint_auth_method=options["auth_method"],
                access_token_ttl=ttl,
                audiences=_split(options["audience"]),
                allowed_ips=_split(options["allow_ip"]),
            )
        except ValidationError as error:
            raise CommandError(_describe(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps({"client_id": client.client_id, "client_secret": issued.secret}))
        else:
            self.stdout.write(f"Client ID: {client.client_id}")
            self.stdout.write(f"Client Secret: {issued.secret}")
            self.stderr.write("Store the secret now: it is not shown again.")


_OPTION_NAMES = {
    "client_id": "--client-id", "allowed_scopes": "--scope", "default_scopes": "--default-scope",
    "allowed_ips": "--allow-ip", "audiences": "--audience", "roles": "--role", "tenants": "--tenant", "name": "NAME",
}


def _describe(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    return "; ".join(
        f"{_OPTION_NAMES.get(field, field)}: {' '.join(messages)}"
        for field, messages in error.message_dict.items()
    )
