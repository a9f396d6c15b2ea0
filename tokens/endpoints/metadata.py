"""Authorization server metadata (RFC 8414 §2), also served as OpenID discovery."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from clients.jwks import SIGNING_ALGORITHMS
from clients.models import TokenEndpointAuthMethod
from tokens.errors import read_only


def server_metadata() -> dict[str, object]:
    issuer = settings.ISSUER
    auth_methods = [m.value for m in TokenEndpointAuthMethod if m.value]
    # RFC 8414 §2: the algorithms private_key_jwt assertions may be signed with, per endpoint.
    signing_algs = list(SIGNING_ALGORITHMS)
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": signing_algs,
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": signing_algs,
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": signing_algs,
        # RFC 9449 §5.1.
        "dpop_signing_alg_values_supported": signing_algs,
        # RFC 8705 §3.3.
        "tls_client_certificate_bound_access_tokens": True,
    }


@read_only
def metadata(request: HttpRequest) -> HttpResponse:
    response = JsonResponse(server_metadata())
    response["Cache-Control"] = "public, max-age=300"
    return response
