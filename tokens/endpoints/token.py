"""``POST /oauth/token``: the client credentials grant (RFC 6749 §4.4, §5)."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request

from authserver.responses import json_response
from tokens import dpop
from tokens.endpoints.base import OAuthEndpoint
from tokens.form import read_form_request
from tokens.grant import issue


class TokenView(OAuthEndpoint):
    def post(self, request: Request) -> HttpResponse:
        issued = issue(read_form_request(request._request))
        body: dict[str, object] = {
            "access_token": issued.access_token,
            "token_type": issued.token_type,
            "expires_in": issued.expires_in,
        }
        # RFC 6749 §5.1: the granted scope, always, unless nothing was granted.
        if issued.scope:
            body["scope"] = issued.scope
        # RFC 9449 §8.2: a fresh nonce for the client's next proof.
        headers = {"DPoP-Nonce": dpop.current_nonce(time.time())} if settings.DPOP_NONCE else None
        return json_response(body, headers=headers)
