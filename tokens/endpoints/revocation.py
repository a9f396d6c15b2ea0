"""``POST /oauth/revoke``: token revocation (RFC 7009).

A client revokes its own tokens.  Unknown, malformed, expired or already revoked
tokens answer 200 (§2.2); ``token_type_hint`` is only a hint, and an unknown one is
ignored (§2.1).  Another client's token is refused with ``unauthorized_client``
(§2.1: "the request is refused and the client is informed of the error") and stays
active.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from rest_framework.request import Request

from authserver.responses import json_response
from tokens.client_auth import authenticate_form_request
from tokens.endpoints.base import OAuthEndpoint
from tokens.errors import InvalidRequestError, UnauthorizedClientError
from tokens.form import read_form_request, single
from tokens.revocation import NotYourToken, revoke_token


class RevocationView(OAuthEndpoint):
    secret_parameters = (*OAuthEndpoint.secret_parameters, "token")

    def post(self, request: Request) -> HttpResponse:
        form = read_form_request(request._request)
        client = authenticate_form_request(form, now=timezone.now())
        token = single(form.params, "token")
        if token is None:
            raise InvalidRequestError(description="The token parameter is required.")
        try:
            revoke_token(client=client, token=token)
        except NotYourToken:
            raise UnauthorizedClientError(description="The token was not issued to this client.") from None
        # RFC 7009 §2.2: the status says it all; the body is an empty JSON object.
        return json_response({})
