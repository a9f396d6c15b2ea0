"""``manage.py addissuer NAME --issuer URL``: trust a platform's JWTs (workload identity federation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from authserver.durations import parse_duration
from clients import jwks
from clients.audit import acting_as
from clients.forms import format_duration, key_set_from_text
from clients.models import TrustedIssuer
from clients.serializers import TrustedIssuerSerializer
from clients.services import trusted_issuer_create

_OPTION_NAMES = {
    "name": "NAME", "issuer": "--issuer", "jwks": "--jwks-file", "jwks_uri": "--jwks-uri",
    "audiences": "--audience", "max_token_lifetime": "--max-lifetime", "enabled": "--disabled",
}


def _key_set(path: str) -> dict[str, Any] | None:
    try:
        return key_set_from_text(Path(path).read_text())
    except OSError as error:
        raise CommandError(f"--jwks-file: cannot read {path}: {error.strerror}") from None
    except (jwks.InvalidKeySet, UnicodeDecodeError) as error:
        raise CommandError(f"--jwks-file: {error}") from None


def _describe(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    return "; ".join(
        f"{_OPTION_NAMES.get(field, field)}: {' '.join(messages)}" for field, messages in error.message_dict.items()
    )


class Command(BaseCommand):
    help = (
        "Register a trusted issuer: a platform (Kubernetes cluster, CI system, SPIFFE trust domain) whose JWTs "
        "authenticate workloads as the clients whose --federated-identity names it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The name clients' federated identities use, e.g. prod-cluster.")
        parser.add_argument(
            "--issuer", required=True,
            help="The exact iss of its tokens (https; plain http only for loopback), or spiffe://<trust domain>.",
        )
        parser.add_argument(
            "--jwks-file", help="Its public keys as a JWK Set (JSON) or PEM, when its discovery is not reachable.",
        )
        parser.add_argument(
            "--jwks-uri", help="Where its JWK Set is (default: jwks_uri of <issuer>/.well-known/openid-configuration).",
        )
        parser.add_argument(
            "--audience", action="append",
            help="An accepted aud value (repeatable; default: this server's ISSUER).",
        )
        parser.add_argument(
            "--max-lifetime", help="The longest a token may live, exp - iat (e.g. 1h; default 24h).",
        )
        parser.add_argument("--disabled", action="store_true", help="Register it disabled.")
        parser.add_argument("--json", action="store_true", help="Print it as one JSON object, as the API shows it.")

    def handle(self, *args: Any, **options: Any) -> None:
        with acting_as("cli"):
            self._handle(options)

    def _handle(self, options: dict[str, Any]) -> None:
        fields: dict[str, Any] = {"enabled": not options["disabled"]}
        if options["jwks_file"] is not None:
            fields["jwks"] = _key_set(options["jwks_file"])
        if options["jwks_uri"] is not None:
            fields["jwks_uri"] = options["jwks_uri"]
        if options["audience"]:
            fields["audiences"] = [item for value in options["audience"] for item in value.split()]
        if options["max_lifetime"] is not None:
            try:
                fields["max_token_lifetime"] = parse_duration(options["max_lifetime"])
            except ValueError as error:
                raise CommandError(f"--max-lifetime: {error}") from None
        try:
            record = trusted_issuer_create(name=options["name"], issuer=options["issuer"], **fields)
        except ValidationError as error:
            raise CommandError(_describe(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps(TrustedIssuerSerializer(record).data))
            return
        for line in _summary(record):
            self.stdout.write(line)


def _summary(record: TrustedIssuer) -> list[str]:
    if record.jwks:
        keys = [f"{kid} ({kind}, thumbprint {thumbprint})" for kid, kind, thumbprint in _described(record.jwks)]
        source = "static: " + ", ".join(keys)
    elif record.jwks_uri:
        source = record.jwks_uri
    else:
        source = f"from {record.issuer.rstrip('/')}/.well-known/openid-configuration"
    return [
        f"Trusted issuer: {record.name}",
        f"Issuer: {record.issuer}",
        f"Keys: {source}",
        f"Audiences: {' '.join(record.audiences) or 'this server (ISSUER)'}",
        f"Max token lifetime: {format_duration(record.max_token_lifetime)}",
        f"Enabled: {'yes' if record.enabled else 'no'}",
    ]


def _described(key_set: object) -> list[tuple[str, str, str]]:
    keys = jwks.parse_key_set(key_set, strict=False)  # a trust bundle's other keys are skipped
    return [(key.kid or "(none)", key.kind, key.thumbprint) for key in keys]
