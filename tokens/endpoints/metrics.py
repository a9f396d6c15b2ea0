"""``GET /metrics``: the Prometheus metrics (tokens.metrics), for the monitoring system only.

Served to a caller whose address, as resolved through ``TRUSTED_PROXIES`` (so a proxy on
loopback does not open it to everyone behind it), lies in ``METRICS_ALLOWED_IPS``, and to a
bearer token of ours carrying ``metrics:read`` (verified as every bearer token is: signature,
issuer, audience the issuer, expiry, revocation, client enabled); anyone else gets 403.  The
address is checked first, so a scrape from an allowed address costs no token verification.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from authserver.responses import NO_STORE, json_response
from tokens import metrics
from tokens.addresses import address_allowed, client_address
from tokens.authentication import BearerTokenAuthentication
from tokens.errors import read_only

SCOPE = "metrics:read"


def _address_allowed(request: HttpRequest) -> bool:
    allowed = settings.METRICS_ALLOWED_IPS
    # address_allowed lets anyone through an empty list; here an empty list lets no one.
    return bool(allowed) and address_allowed(client_address(request), allowed)


def _token_allowed(request: HttpRequest) -> bool:
    try:
        authenticated = BearerTokenAuthentication().authenticate(Request(request))
    except AuthenticationFailed:
        return False
    return authenticated is not None and SCOPE in authenticated[1].scopes


@read_only
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not (_address_allowed(request) or _token_allowed(request)):
        return json_response(
            {
                "error": "access_denied",
                "error_description": "Metrics are served to the addresses in METRICS_ALLOWED_IPS "
                f"and to bearer tokens with the scope {SCOPE}.",
            },
            status=403,
        )
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE, headers=NO_STORE)
