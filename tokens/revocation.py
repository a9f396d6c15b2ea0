"""Revoking access tokens and API keys (RFC 7009). JWTs cannot be unsigned, so a revoked
token's ``jti`` is kept until the token's own expiry, and every verification consults it;
an API key is marked revoked (``clients.services.api_key_revoke``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from clients import audit, services
from clients import secrets as client_secrets
from clients.models import ApiKey, Client
from tokens.claims import TokenSubject
from tokens.models import RevokedToken
from tokens.verification import ANY_AUDIENCE, InvalidToken, verify_access_token, verify_api_key

log = logging.getLogger("authserver.tokens")


class NotYourToken(Exception):
    """The token is valid but was issued to another client."""


def revoke_token(*, client: TokenSubject, token: str) -> bool:
    """Revoke ``token`` if it is one of ours, live, and issued to ``client``.

    Returns whether anything was revoked: invalid, expired or already revoked tokens
    need no action (RFC 7009 §2.2).  Raises ``NotYourToken`` for another client's token.
    """
    if client_secrets.looks_like_api_key(token):
        return _revoke_api_key(client=client, key=token)
    try:
        verified = verify_access_token(token, audience=ANY_AUDIENCE)
    except InvalidToken:
        return False
    if verified.claims.get("client_id") != client.client_id:
        raise NotYourToken()
    expires = datetime.fromtimestamp(int(verified.claims["exp"]), tz=UTC)
    try:
        with transaction.atomic():
            RevokedToken.objects.create(jti=verified.jti, client_id=client.client_id, expires=expires)
    except IntegrityError:
        return False
    log.info("token revoked client_id=%r jti=%s", client.client_id, verified.jti)
    prune_revocations()
    return True


def _revoke_api_key(*, client: TokenSubject, key: str) -> bool:
    try:
        verified = verify_api_key(key, now=timezone.now())
    except InvalidToken:
        return False
    assert verified.api_key is not None
    if verified.client.client_id != client.client_id:
        raise NotYourToken()
    holder = Client.objects.filter(client_id=client.client_id).first()
    if holder is None:
        return False
    try:
        with audit.acting_as(f"client:{client.client_id}"):
            services.api_key_revoke(client=holder, prefix=verified.api_key.prefix, pk=verified.api_key.pk)
    except ApiKey.DoesNotExist:
        return False
    log.info("API key revoked by its client client_id=%r prefix=%s", client.client_id, verified.api_key.prefix)
    return True


def prune_revocations(*, now: datetime | None = None) -> int:
    """Forget revocations of tokens that have expired by themselves."""
    deleted, _ = RevokedToken.objects.filter(expires__lte=now or timezone.now()).delete()
    return deleted
