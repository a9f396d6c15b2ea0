"""The client credentials grant (RFC 6749 §4.4): its rules, in the order they apply.

1. ``grant_type`` present (else ``invalid_request``) and ``client_credentials``
   (else ``unsupported_grant_type``).  Repeated parameters were refused when the
   form was read (§3.2).
2. The client authenticates (§2.3; ``invalid_client``, or 429 when locked out).
3. The client may use this grant (``unauthorized_client``).
4. Scope (§3.3): each requested scope-token allowed; none requested: the client's
   default scopes (``invalid_scope``).
5. Audience (RFC 8707 §2): each ``resource`` and our ``audience`` allowed
   (``invalid_target``).
6. DPoP (RFC 9449 §4.3, §5): a ``DPoP`` proof, if sent, is checked and binds the token to
   its key (``invalid_dpop_proof``); a client with ``dpop_bound_access_tokens`` must send one.
7. mTLS (RFC 8705 §3): a client with ``tls_client_certificate_bound_access_tokens`` gets a
   token bound to the TLS client certificate it connected with (``invalid_request`` without one).

The checklist runs here rather than in oauthlib's ``ClientCredentialsGrant`` because
that grant's request object and validator plumbing cost more than the checks themselves
(docs/performance.md).  ``tests/test_grant_equivalence.py`` keeps oauthlib's grant as the
reference and requires both to give the same answer to every request.
"""

from __future__ import annotations

from django.utils import timezone

from tokens import claims, dpop, mtls
from tokens.client_auth import authenticate_form_request
from tokens.errors import InvalidRequestError, UnauthorizedClientError, UnsupportedGrantTypeError
from tokens.form import FormRequest, single
from tokens.issuing import IssuedToken, issue_access_token

GRANT_TYPE = "client_credentials"


def issue(token_request: FormRequest) -> IssuedToken:
    """Validate a token request and issue a token; raises ``OAuth2Error`` subclasses."""
    params = token_request.params
    grant_type = single(params, "grant_type")
    if not grant_type:
        raise InvalidRequestError(description="Request is missing grant type.")
    if grant_type != GRANT_TYPE:
        raise UnsupportedGrantTypeError()
    client = authenticate_form_request(token_request, now=timezone.now())
    if not client.allows_grant(grant_type):
        raise UnauthorizedClientError()
    scope = single(params, "scope")
    # §3.3 separates scope-tokens by single spaces: "a  b" holds an empty token, refused.
    requested = scope.split(" ") if scope is not None else claims.default_scopes(client)
    scopes = claims.check_scopes(client, requested)
    tenants, roles = claims.tenants_and_roles(client, scopes)
    audience = claims.choose_audience(client, params.get("resource", []), single(params, "audience"))
    proof = dpop.verify_proof(token_request.dpop, method="POST", path=token_request.path)
    if proof is None and client.dpop_bound_access_tokens:
        raise dpop.InvalidDPoPProofError(description="This client's tokens must be DPoP-bound: send a DPoP proof.")
    try:
        certificate = mtls.bound_thumbprint(client, token_request.certificate)
    except mtls.CertificateRejected:
        raise InvalidRequestError(
            description="This client's tokens are bound to its TLS client certificate: connect with it."
        ) from None
    cnf = {**({"jkt": proof.jkt} if proof else {}), **({"x5t#S256": certificate} if certificate else {})}
    grant = claims.Grant(scopes=scopes, audience=audience, tenants=tenants, roles=roles, cnf=cnf or None)
    return issue_access_token(client=client, grant=grant)
