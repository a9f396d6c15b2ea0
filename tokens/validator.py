"""The oauthlib request validator: an adapter from oauthlib's hooks to our domain.

oauthlib's ``ClientCredentialsGrant`` runs the RFC 6749 §4.4 checklist in its fixed
order (grant type present and supported, no repeated grant_type or scope, client
authentication, grant allowed for the client, scope); each hook below delegates to
``tokens.client_auth`` or ``tokens.claims``.  Nothing is stored: tokens are JWTs.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request

from clients.registry import ClientRecord
from tokens import claims
from tokens.client_auth import authenticate_form_request


class Validator(OAuth2Validator):
    def client_authentication_required(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        return True

    def authenticate_client(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        request.client = authenticate_form_request(request.token_request, now=timezone.now())
        return True

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: ClientRecord, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        return client.allows_grant(grant_type)

    def get_default_scopes(self, client_id: str, request: Request, *args: Any, **kwargs: Any) -> list[str]:
        return claims.default_scopes(request.client)

    def validate_scopes(
        self, client_id: str, scopes: list[str], client: ClientRecord, request: Request, *args: Any, **kwargs: Any
    ) -> bool:
        request.scopes = list(claims.check_scopes(client, scopes))
        return True

    def save_bearer_token(self, token: dict[str, Any], request: Request, *args: Any, **kwargs: Any) -> None:
        """JWT access tokens are self-contained: nothing to store."""
