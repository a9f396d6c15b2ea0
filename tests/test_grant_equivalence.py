"""The lean grant (tokens.grant) answers every token request exactly as oauthlib's
ClientCredentialsGrant did (tests/oauthlib_reference.py): same error, status and
description, or the same granted scope, audience, tenants, roles and lifetime."""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.models import Client, ClientSecret
from clients.services import secret_add
from tests import oauthlib_reference
from tests.conftest import basic
from tokens import grant
from tokens.errors import OAuth2Error
from tokens.form import FormRequest

LOCAL = ipaddress.ip_address("127.0.0.1")
INSIDE = ipaddress.ip_address("10.1.2.3")


@pytest.fixture(autouse=True)
def _no_lockouts(settings: Any) -> None:
    """Both engines see the same request twice: failures must not lock the second out."""
    settings.FAILED_AUTH_RATE_PER_IP = "off"
    settings.FAILED_AUTH_RATE_PER_CLIENT = "off"


@pytest.fixture
def registry(make_client: Any) -> dict[str, tuple[str, str]]:
    """Named credentials covering every branch of the grant."""
    full, full_secret = make_client(
        client_id="full", allowed_scopes=["read", "write", "admin"], default_scopes=["read"],
        tenants=["acme", "beta"], roles=["admin", "acme/viewer", "beta/editor"],
        audiences=["https://api.example.com", "urn:billing"], access_token_ttl=600,
    )
    bare, bare_secret = make_client(client_id="bare", token_endpoint_auth_method="client_secret_post")
    off, off_secret = make_client(client_id="off", allowed_scopes=["read"])
    Client.objects.filter(pk=off.pk).update(enabled=False)
    nogrant, nogrant_secret = make_client(client_id="nogrant", allowed_scopes=["read"])
    Client.objects.filter(pk=nogrant.pk).update(grant_types=[])
    fenced, fenced_secret = make_client(client_id="fenced", allowed_scopes=["read"], allowed_ips=["10.0.0.0/8"])
    revoked = secret_add(client=full).secret
    ClientSecret.objects.filter(prefix=revoked[:12]).update(revoked="2020-01-01T00:00:00Z")
    return {
        "full": ("full", full_secret), "bare": ("bare", bare_secret), "off": ("off", off_secret),
        "nogrant": ("nogrant", nogrant_secret), "fenced": ("fenced", fenced_secret),
        "revoked": ("full", revoked), "wrong": ("full", bare_secret), "unknown": ("nobody", full_secret),
    }


def outcome(engine: Any, form: FormRequest) -> tuple[Any, ...]:
    try:
        issued = engine.issue(form)
    except OAuth2Error as error:
        return ("error", error.error, error.status_code, error.description)
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    for varying in ("jti", "iat", "exp"):
        claims.pop(varying)
    return ("ok", issued.scope, issued.expires_in, sorted(claims.items()))


def form(params: dict[str, list[str]], authorization: str | None = None, address: Any = LOCAL) -> FormRequest:
    return FormRequest(params=params, authorization=authorization, address=address)


def assert_same(request: FormRequest) -> tuple[Any, ...]:
    expected = outcome(oauthlib_reference, request)
    assert outcome(grant, request) == expected, request
    return expected


AUTH = ["basic", "post", "both", "none", "malformed"]
GRANT = [None, "client_credentials", "password", "client_credentials "]
SCOPE = [None, "read", "read write", "read  write", "write read read", "tenant:acme", "tenant:acme admin",
         "tenant:zzz", "bogus", 'a"b', " read"]
AUDIENCE = [{}, {"resource": ["https://api.example.com"]}, {"resource": ["urn:billing", "https://api.example.com"]},
            {"audience": ["urn:billing"]}, {"resource": ["https://evil.example"]}, {"resource": ["not a uri"]},
            {"resource": ["https://api.example.com#frag"]}]


def build(who: str, creds: dict[str, tuple[str, str]], auth: str, grant_type: str | None, scope: str | None,
          audience: dict[str, list[str]], address: Any = LOCAL) -> FormRequest:
    client_id, secret = creds[who]
    params: dict[str, list[str]] = {k: list(v) for k, v in audience.items()}
    if grant_type is not None:
        params["grant_type"] = [grant_type]
    if scope is not None:
        params["scope"] = [scope]
    authorization = None
    if auth in ("post", "both"):
        params["client_id"], params["client_secret"] = [client_id], [secret]
    if auth in ("basic", "both"):
        authorization = basic(client_id, secret)
    if auth == "malformed":
        authorization = "Basic !!!"
    return form(params, authorization, address)


def test_every_combination_gets_the_same_answer(registry: dict[str, tuple[str, str]]) -> None:
    seen: dict[str, int] = {}
    for who, auth, grant_type, scope, audience in itertools.product(
        registry, AUTH, GRANT, SCOPE, AUDIENCE
    ):
        result = assert_same(build(who, registry, auth, grant_type, scope, audience))
        key = result[0] if result[0] == "ok" else result[1]
        seen[key] = seen.get(key, 0) + 1
    for who in ("fenced", "full"):
        for address in (LOCAL, INSIDE):
            assert_same(build(who, registry, "basic", "client_credentials", "read", {}, address))
    # The corpus reaches every outcome the grant has.
    assert set(seen) == {"ok", "invalid_request", "unsupported_grant_type", "invalid_client",
                         "unauthorized_client", "invalid_scope", "invalid_target"}, seen


_text = st.sampled_from(["read", "write", "admin", "tenant:acme", "tenant:beta", "", " ", "a b", "client_credentials",
                         "https://api.example.com", "urn:billing", "full", "bare", "\x00", "é"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # As tokens.form reads them: one value each, except the repeatable ``resource``.
    params=st.fixed_dictionaries({}, optional={
        name: st.lists(_text, min_size=1, max_size=2 if name == "resource" else 1)
        for name in ("grant_type", "scope", "resource", "audience", "client_id", "client_secret", "other")
    }),
    who=st.sampled_from(["full", "bare", "wrong", "unknown", None]),
)
def test_arbitrary_parameters_get_the_same_answer(
    registry: dict[str, tuple[str, str]], params: dict[str, list[str]], who: str | None
) -> None:
    authorization = basic(*registry[who]) if who else None
    if who and "client_secret" not in params:
        params = {**params, "client_secret": [registry[who][1]]} if who == "bare" else params
    assert_same(form(params, authorization))
