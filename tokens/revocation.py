"""Revoking access tokens (RFC 7009). JWTs cannot be unsigned, so a revoked token's
``jti`` is kept until the token's own expiry, and every verification consults it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from tokens.claims import TokenSubject
from tokens.models import RevokedToken
from tokens.verification import ANY_AUDIENCE, InvalidToken, verify_access_token

log = logging.getLogger("authserver.tokens")


class NotYourToken(Exception):
    """The token is valid but was issued to another client."""


def revoke_token(*, client: TokenSubject, token: str) -> bool:
    """Revoke ``token`` if it is one of ours, live, and issued to ``client``.

    Returns whether anything was revoked: invalid, expired or already revoked tokens
    need no action (RFC 7009 §2.2).  Raises ``NotYourToken`` for another client's token.
    """
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


def prune_revocations(*, now: datetime | None = None) -> int:
    """Forget revocations of tokens that have expired by themselves."""
    deleted, _ = RevokedToken.objects.filter(expires__lte=now or timezone.now()).delete()
    return deleted
