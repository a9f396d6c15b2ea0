"""``manage.py createclient NAME``: register a client and print its secret once."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from authserver.durations import parse_duration
from clients import metadata
from clients.audit import acting_as
from clients.forms import key_set_from_text
from clients.jwks import InvalidKeySet
from clients.models import Client
from clients.services import client_create


def _split(values: list[str] | None) -> list[str]:
    """Repeatable options also accept space-separated values: --scope "a b"."""
    return [item for value in values or [] for item in value.split()]


def _dest(setting: metadata.Setting) -> str:
    assert setting.cli is not None
    return setting.cli.removeprefix("--").replace("-", "_")


def _add_setting(parser: CommandParser, setting: metadata.Setting) -> None:
    """One flag per client setting that has one (``clients.metadata``)."""
    assert setting.cli is not None
    if setting.is_list or setting.kind is metadata.Kind.IDENTITIES:
        parser.add_argument(setting.cli, action="append", help=setting.cli_help)
    elif setting.kind is metadata.Kind.BOOLEAN:
        parser.add_argument(setting.cli, action=argparse.BooleanOptionalAction, help=setting.cli_help)
    elif setting.kind is metadata.Kind.CHOICE:
        choices = [value for value, _ in Client._meta.get_field(setting.name).choices or () if value]
        parser.add_argument(setting.cli, choices=choices, help=setting.cli_help)
    else:
        parser.add_argument(setting.cli, help=setting.cli_help)


def _identity(text: str) -> Any:
    """``NAME=SUBJECT`` or a JSON object (``--federated-identity``)."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            raise CommandError(f"--federated-identity: not JSON: {text}") from None
    name, equals, subject = text.partition("=")
    if not equals:
        raise CommandError("--federated-identity: write ISSUER_NAME=SUBJECT_PATTERN or a JSON object.")
    return {"trusted_issuer": name, "subject": subject}


def _value(setting: metadata.Setting, raw: Any) -> Any:
    if setting.kind is metadata.Kind.IDENTITIES:
        return [_identity(text) for text in raw or []]
    if setting.is_list:
        return _split(raw)
    if setting.kind is metadata.Kind.DURATION:
        try:
            return parse_duration(raw)
        except ValueError as error:
            raise CommandError(f"{setting.cli}: {error}") from None
    if setting.kind is metadata.Kind.JWKS and raw is not None:
        try:
            return key_set_from_text(Path(raw).read_text())
        except OSError as error:
            raise CommandError(f"{setting.cli}: cannot read {raw}: {error.strerror}") from None
        except InvalidKeySet as error:
            raise CommandError(f"{setting.cli}: {error}") from None
    return raw


class Command(BaseCommand):
    help = (
        "Create an enabled confidential client allowed the client credentials grant, "
        "and print its client ID and secret. The secret is shown only this once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="A human-readable name.")
        parser.add_argument("--client-id", help="Choose the client ID (default: random).")
        for setting in metadata.SETTINGS:
            if setting.cli is not None:
                _add_setting(parser, setting)
        parser.add_argument("--tenant", action="append", help="A tenant slug (repeatable; created if missing).")
        parser.add_argument(
            "--role", action="append",
            help="A role: NAME (global) or TENANT/NAME (repeatable; created if missing).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        with acting_as("cli"):
            self._handle(options)

    def _handle(self, options: dict[str, Any]) -> None:
        values = {
            setting.name: _value(setting, options[_dest(setting)])
            for setting in metadata.SETTINGS
            if setting.cli is not None and options[_dest(setting)] is not None
        }
        try:
            client, issued = client_create(
                name=options["name"],
                client_id=options["client_id"],
                tenants=_split(options["tenant"]),
                roles=_split(options["role"]),
                **values,
            )
        except ValidationError as error:
            raise CommandError(_describe(error)) from None
        if options["json"]:
            shown = {"client_id": client.client_id}
            if issued is not None:
                shown["client_secret"] = issued.secret
            self.stdout.write(json.dumps(shown))
            return
        self.stdout.write(f"Client ID: {client.client_id}")
        if issued is None:
            self.stdout.write(f"Authentication: {client.token_endpoint_auth_method} (no secret)")
            return
        self.stdout.write(f"Client Secret: {issued.secret}")
        self.stderr.write("Store the secret now: it is not shown again.")


_OPTION_NAMES = {
    "client_id": "--client-id", "roles": "--role", "tenants": "--tenant", "name": "NAME",
    **{setting.name: setting.cli for setting in metadata.SETTINGS if setting.cli is not None},
}


def _describe(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    return "; ".join(
        f"{_OPTION_NAMES.get(field, field)}: {' '.join(messages)}"
        for field, messages in error.message_dict.items()
    )
