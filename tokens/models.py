"""Signing keys (design §6). Access tokens themselves are not stored: they are JWTs."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q


class SigningKeyQuerySet(models.QuerySet["SigningKey"]):
    def published(self, at: datetime) -> SigningKeyQuerySet:
        """Keys in the JWKS: the signer, and rotated-out keys whose tokens may still be live."""
        return self.filter(Q(published_until__isnull=True) | Q(published_until__gt=at))

    def signers(self) -> SigningKeyQuerySet:
        return self.filter(signing=True)


class SigningKey(models.Model):
    """One asymmetric key pair; the newest key not rotated out signs new tokens."""

    kid = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=16)
    private_key = models.TextField(
        help_text="PKCS#8 PEM; encrypted with SIGNING_KEY_ENCRYPTION_KEY when that is set."
    )
    encrypted = models.BooleanField(default=False)
    public_jwk = models.JSONField()
    created = models.DateTimeField()
    # True for the one signer, NULL for every other key: the unique index makes a
    # second concurrent "first key" or rotation fail instead of leaving two signers.
    signing = models.BooleanField(null=True, default=True, unique=True, editable=False)
    rotated_out = models.DateTimeField(null=True, blank=True, help_text="When it stopped signing.")
    published_until = models.DateTimeField(
        null=True, blank=True, help_text="Kept in the JWKS until every token it signed has expired."
    )

    objects = SigningKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.kid} ({self.algorithm})"

    def state(self, at: datetime) -> str:
        if self.signing:
            return "signing"
        if self.published_until is None or self.published_until > at:
            return "published"
        return "retired"


class RevokedToken(models.Model):
    """A revoked access token, remembered by ``jti`` until it would have expired anyway."""

    jti = models.CharField(max_length=64, unique=True)
    client_id = models.CharField(max_length=255)
    expires = models.DateTimeField(db_index=True)
    revoked = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.jti


class SharedCounter(models.Model):
    """A failure counter for one key and fixed window (``tokens.shared_state``, database store)."""

    key = models.CharField(max_length=64, primary_key=True, help_text="Hashed key and window number.")
    window_end = models.FloatField(db_index=True, help_text="Seconds since the epoch.")
    count = models.PositiveIntegerField()

    def __str__(self) -> str:
        return self.key


class SharedMarker(models.Model):
    """A lockout, or a record of something usable once, until ``expires`` (``tokens.shared_state``)."""

    key = models.CharField(max_length=64, primary_key=True, help_text="Hashed key.")
    expires = models.FloatField(db_index=True, help_text="Seconds since the epoch.")

    def __str__(self) -> str:
        return self.key
