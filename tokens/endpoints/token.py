"""``POST /oauth/token``: the client credentials grant (RFC 6749 §4.4, §5)."""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework.request import Request

from authserver.responses import json_response
from tokens.endpoints.base import OAuthEndpoint
from tokens.form import read_form_request
from tokens.grant import issue
from tokens.issuing import TOKEN_TYPE


class TokenView(OAuthEndpoint):
    def post(self, request: Request) -> HttpResponse:
        issued = issue(read_form_request(request._request))
        body: dict[str, object] = {
            "access_token": issued.access_token,
            "token_type": TOKEN_TYPE,
            "expires_in": issued.expires_in,
        }
        # RFC 6749 §5.1: the granted scope, always, unless nothing was granted.
        if issued.scope:
            body["scope"] = issued.scope
        return json_response(body)
