"""``POST /oauth/introspect``: token introspection (RFC 7662).

Any enabled client that authenticates may introspect any token; the answer holds
nothing beyond the token's own claims, and every failure is the same
``{"active": false}``, so introspection reveals no more than holding the token does
(RFC 7662 §4).  An API key answers with its own facts only: ``client_id``, ``sub``,
``scope``, ``iat``, ``exp`` (DESIGN §9.5).
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from rest_framework.request import Request

from authserver.responses import json_response
from tokens.client_auth import authenticate_form_request
from tokens.endpoints.base import OAuthEndpoint
from tokens.errors import InvalidRequestError
from tokens.form import read_form_request, single
from tokens.issuing import TOKEN_TYPE
from tokens.verification import ANY_AUDIENCE, InvalidToken, verify_bearer

# RFC 7662 §2.2 members, in the order they are returned, then our own claims.
_MEMBERS = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "cnf", "tenants", "roles")


class IntrospectionView(OAuthEndpoint):
    secret_parameters = (*OAuthEndpoint.secret_parameters, "token")

    def post(self, request: Request) -> HttpResponse:
        form = read_form_request(request._request)
        now = timezone.now()
        authenticate_form_request(form, now=now)
        token = single(form.params, "token")
        if token is None:
            raise InvalidRequestError(description="The token parameter is required.")
        try:
            verified = verify_bearer(token, audience=ANY_AUDIENCE, now=now)
        except InvalidToken:
            return json_response({"active": False})
        cnf = verified.claims.get("cnf")
        # RFC 9449 §6.2: a DPoP-bound token's type and confirmation.
        token_type = "DPoP" if isinstance(cnf, dict) and "jkt" in cnf else TOKEN_TYPE
        body: dict[str, object] = {"active": True, "token_type": token_type}
        body.update({name: verified.claims[name] for name in _MEMBERS if name in verified.claims})
        return json_response(body)
