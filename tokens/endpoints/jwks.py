"""``GET /.well-known/jwks.json``: the published public keys (RFC 7517 §5), from memory."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from tokens.errors import read_only
from tokens.keys import keyring


@read_only
def jwks(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(keyring().jwks_json, content_type="application/json")
    # Resource servers may cache briefly; a rotation shows up within a minute.
    response["Cache-Control"] = "public, max-age=60"
    return response
