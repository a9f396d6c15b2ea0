"""The token endpoint's engine: oauthlib's client credentials grant with our validator."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from oauthlib.common import Request
from oauthlib.oauth2 import ClientCredentialsGrant

from tokens import claims
from tokens.form import FormRequest, single
from tokens.issuing import IssuedToken, issue_access_token
from tokens.validator import Validator


def _choose_audience(request: Request) -> None:
    """RFC 8707 check, run after scope as oauthlib's post-token validator."""
    params = request.token_request.params
    client = request.client
    tenants, roles = claims.tenants_and_roles(client, request.scopes)
    request.grant = claims.Grant(
        scopes=tuple(request.scopes),
        audience=claims.choose_audience(client, params.get("resource", []), single(params, "audience")),
        tenants=tenants,
        roles=roles,
    )


class TokenServer:
    def __init__(self) -> None:
        self.grant = ClientCredentialsGrant(Validator(), post_token=[_choose_audience])

    def issue(self, token_request: FormRequest) -> IssuedToken:
        """Validate per RFC 6749 §4.4 and issue a token; raises ``OAuth2Error`` subclasses."""
        pairs = [(name, value) for name, values in token_request.params.items() for value in values]
        request = Request(f"{settings.ISSUER}/oauth/token", "POST", pairs, {})
        request.token_request = token_request
        # RFC 6749 §3.3 separates scope-tokens by single spaces; oauthlib's own split
        # would also strip other whitespace, accepting what the grammar refuses.
        request.scopes = request.scope.split(" ") if request.scope is not None else None
        self.grant.validate_token_request(request)
        return issue_access_token(client=request.client, grant=request.grant)


@cache
def token_server() -> TokenServer:
    return TokenServer()
