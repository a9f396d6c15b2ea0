"""``manage.py rotatekeys``: a new signing key signs from now on; old ones stay published."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from authserver.checks import SUPPORTED_SIGNING_ALGS
from clients.audit import acting_as
from tokens.keys import key_prune, key_rotate


class Command(BaseCommand):
    help = (
        "Rotate the token signing key. Previous keys stay in the JWKS until every token "
        "they signed has expired; keys past that are deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--algorithm", choices=SUPPORTED_SIGNING_ALGS, default=None,
            help="Algorithm of the new key (default: SIGNING_ALG).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with acting_as("cli"):
            pruned = key_prune()
            key = key_rotate(algorithm=options["algorithm"] or settings.SIGNING_ALG)
        self.stdout.write(f"New signing key: kid={key.kid} alg={key.algorithm}")
        if pruned:
            self.stdout.write(f"Deleted {pruned} retired key(s).")
