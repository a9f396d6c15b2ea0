"""The audit trail: registry and key changes, with who made them.

Each change is stored as an ``AuditEvent`` (readable in the admin) and written as a
structured log line on the ``authserver.audit`` logger.  Services call ``record``
explicitly; the actor comes from the request being served (``AuditActorMiddleware``)
or from ``acting_as`` in commands.  Callers never pass secrets, hashes or tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

from clients.models import AuditEvent

log = logging.getLogger("authserver.audit")

Actor = str | Callable[[], str]
_actor: ContextVar[Actor] = ContextVar("audit_actor", default="system")


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str:
    actor = _actor.get()
    return actor() if callable(actor) else actor


def actor_of(user: Any) -> str:
    """``client:ID`` for a bearer token's client, ``user:NAME`` for a logged-in user."""
    client = getattr(user, "client", None)
    if client is not None:
        return f"client:{client.client_id}"
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.get_username()}"
    return "system"  # a change the server makes on its own (e.g. the first signing key)


def record(action: str, *, target: str, changes: dict[str, Any] | None = None) -> AuditEvent:
    event = AuditEvent.objects.create(
        actor=current_actor(), action=action, target=target, changes=changes or {}
    )
    log.info(
        "%s %s by %s", action, target, event.actor,
        extra={"audit": True, "action": action, "target": target, "actor": event.actor, "changes": event.changes},
    )
    return event


class AuditActorMiddleware:
    """Makes the request's user (session) or client (bearer token, once DRF has
    authenticated it) the actor of every change recorded while serving it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with acting_as(lambda: actor_of(getattr(request, "user", None))):
            return self.get_response(request)
