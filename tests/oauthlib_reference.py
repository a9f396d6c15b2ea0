"""The reference engine for the token endpoint: oauthlib's ``ClientCredentialsGrant``
with a request validator, as authserver ran it before ``tokens.grant`` replaced it on
the hot path.  Kept only to prove the lean path gives the same answer to every
request (tests/test_grant_equivalence.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request
from oauthlib.oauth2 import ClientCredentialsGrant

from clients.registry import ClientRecord
from tokens import claims
from tokens.client_auth import authenticate_form_request
from tokens.form import FormRequest, single
from tokens.issuing import IssuedToken, issue_access_token


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


def _choose_audience(request: Request) -> None:
    params = request.token_request.params
    client = request.client
    tenants, roles = claims.tenants_and_roles(client, request.scopes)
    request.grant = claims.Grant(
        scopes=tuple(request.scopes),
        audience=claims.choose_audience(client, params.get("resource", []), single(params, "audience")),
        tenants=tenants,
        roles=roles,
    )


_grant = ClientCredentialsGrant(Validator(), post_token=[_choose_audience])


def issue(token_request: FormRequest) -> IssuedToken:
    pairs = [(name, value) for name, values in token_request.params.items() for value in values]
    request = Request(f"{settings.ISSUER}/oauth/token", "POST", pairs, {})
    request.token_request = token_request
    request.scopes = request.scope.split(" ") if request.scope is not None else None
    _grant.validate_token_request(request)
    return issue_access_token(client=request.client, grant=request.grant)
