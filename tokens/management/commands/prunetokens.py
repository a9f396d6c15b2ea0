"""``manage.py prunetokens``: forget revocations of expired tokens and retired signing keys (and
expired counters and markers of the shared security state's database store, which also prunes
itself now and then)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from clients.audit import acting_as
from tokens.keys import key_prune
from tokens.revocation import prune_revocations
from tokens.shared_state import DatabaseState


class Command(BaseCommand):
    help = "Delete revocation records of tokens past their expiry and signing keys no longer published."

    def handle(self, *args: Any, **options: Any) -> None:
        with acting_as("cli"):
            revocations = prune_revocations()
            keys = key_prune()
            DatabaseState().prune(now=time.time())
        self.stdout.write(f"Deleted {revocations} expired revocation(s) and {keys} retired signing key(s).")
