"""Access tokens, signing keys, rotation, the JWKS and the metadata (RFC 9068, RFC 7517, RFC 8414)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.core.management import call_command
from django.test import Client as HttpClient
from django.utils import timezone

from clients.models import Client
from tests.conftest import ISSUER, basic, jwks_verify, post_token
from tokens.claims import Grant
from tokens.issuing import issue_access_token
from tokens.keys import key_prune, key_rotate, keyring, keyring_invalidate
from tokens.models import SigningKey

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = str(PROJECT / ".venv" / "bin" / "python")
GUNICORN = str(PROJECT / ".venv" / "bin" / "gunicorn")

CLAIMS = {"iss", "sub", "client_id", "aud", "iat", "exp", "jti", "scope"}
# RFC 7517/7518: the public members of each key type, plus our kid, alg and use.
PUBLIC_MEMBERS = {
    "EC": {"kty", "crv", "x", "y", "kid", "alg", "use"},
    "RSA": {"kty", "n", "e", "kid", "alg", "use"},
    "OKP": {"kty", "crv", "x", "kid", "alg", "use"},
}
KTY = {"ES256": "EC", "RS256": "RSA", "EdDSA": "OKP"}
# RFC 7638 §3.2: the members a thumbprint hashes.
THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


def request_token(http: HttpClient, client: Client, secret: str, **data: Any) -> dict[str, Any]:
    response = post_token(
        http, {"grant_type": "client_credentials", **data}, authorization=basic(client.client_id, secret)
    )
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def served_jwks(http: HttpClient) -> dict[str, Any]:
    response = http.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def served_kids(http: HttpClient) -> set[str]:
    return {key["kid"] for key in served_jwks(http)["keys"]}


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def rfc7638_thumbprint(jwk: dict[str, Any]) -> str:
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, sort_keys=True, separators=(",", ":")).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def rotate_with_function(algorithm: str | None = None) -> str:
    return key_rotate(algorithm=algorithm).kid


def rotate_with_command(algorithm: str | None = None) -> str:
    out = io.StringIO()
    call_command("rotatekeys", *(["--algorithm", algorithm] if algorithm else []), stdout=out)
    match = re.search(r"kid=(\S+)", out.getvalue())
    assert match, out.getvalue()
    return match[1]


ROTATIONS = [
    pytest.param(rotate_with_function, id="key_rotate"),
    pytest.param(rotate_with_command, id="rotatekeys"),
]


# --- the token itself (RFC 9068) ---------------------------------------------------------


def test_header_is_exactly_alg_typ_and_a_published_kid(make_client, http):
    client, secret = make_client()
    token = request_token(http, client, secret)["access_token"]

    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": header["kid"]}
    assert header["kid"] in served_kids(http)


@pytest.mark.parametrize(
    ("assignments", "extra_claims"),
    [
        pytest.param({}, {}, id="no tenants or roles"),
        pytest.param(
            {"tenants": ["acme"], "roles": ["admin", "acme/ops"]},
            {"tenants": ["acme"], "roles": ["acme/ops", "admin"]},
            id="tenants and roles",
        ),
    ],
)
def test_claims_are_exactly_the_rfc9068_set(make_client, http, assignments, extra_claims):
    client, secret = make_client(
        allowed_scopes=["read", "write"], audiences=["https://api.example.com"], **assignments
    )
    before = int(time.time())
    body = request_token(http, client, secret)
    after = int(time.time())

    assert body == {
        "access_token": body["access_token"], "token_type": "Bearer", "expires_in": 3600, "scope": "read write",
    }
    claims = jwks_verify(http, body["access_token"], audience="https://api.example.com")
    if "roles" in claims:
        claims["roles"] = sorted(claims["roles"])  # the order of roles carries no meaning
    assert claims == {
        "iss": ISSUER,
        "sub": client.client_id,
        "client_id": client.client_id,
        "aud": "https://api.example.com",
        "iat": claims["iat"],
        "exp": claims["iat"] + body["expires_in"],
        "jti": claims["jti"],
        "scope": "read write",
        **extra_claims,
    }
    assert set(claims) == CLAIMS | set(extra_claims)
    assert before <= claims["iat"] <= after


@pytest.mark.parametrize(
    ("client_ttl", "server_ttl", "expected"),
    [
        pytest.param(120, 3600, 120, id="client TTL shorter than the default"),
        pytest.param(7200, 600, 7200, id="client TTL longer than the default"),
        pytest.param(None, 900, 900, id="server default"),
    ],
)
def test_lifetime_is_the_client_ttl_else_the_server_default(make_client, http, settings, client_ttl, server_ttl,
                                                            expected):
    settings.ACCESS_TOKEN_TTL = server_ttl
    client, secret = make_client(access_token_ttl=client_ttl)
    body = request_token(http, client, secret)

    claims = jwks_verify(http, body["access_token"])
    assert body["expires_in"] == expected
    assert claims["exp"] - claims["iat"] == expected


def test_jti_is_unique_across_tokens(make_client, http):
    first, first_secret = make_client()
    second, second_secret = make_client()
    tokens = [request_token(http, first, first_secret)["access_token"] for _ in range(15)]
    tokens += [request_token(http, second, second_secret)["access_token"] for _ in range(15)]

    jtis = [jwks_verify(http, token)["jti"] for token in tokens]
    assert len(set(jtis)) == len(tokens) == 30


@pytest.mark.parametrize(
    ("audience", "expected_aud"),
    [
        pytest.param(("https://api.example.com",), "https://api.example.com", id="one audience"),
        pytest.param(("https://a.example.com", "https://b.example.com"),
                     ["https://a.example.com", "https://b.example.com"], id="two audiences"),
    ],
)
def test_issue_access_token_without_http(make_client, http, audience, expected_aud):
    client, _ = make_client(access_token_ttl=120)
    grant = Grant(scopes=("read", "write"), audience=audience, tenants=("acme",), roles=("acme/ops",))
    now = int(time.time())

    issued = issue_access_token(client=client, grant=grant, now=now)

    assert (issued.expires_in, issued.scope, issued.kid) == (120, "read write", keyring().signer.kid)
    assert jwt.get_unverified_header(issued.access_token) == {"alg": "ES256", "typ": "at+jwt", "kid": issued.kid}
    assert jwks_verify(http, issued.access_token, audience=audience[0]) == {
        "iss": ISSUER, "sub": client.client_id, "client_id": client.client_id, "aud": expected_aud,
        "iat": now, "exp": now + 120, "jti": issued.jti, "scope": "read write",
        "tenants": ["acme"], "roles": ["acme/ops"],
    }


# --- the first key and the JWKS ----------------------------------------------------------


@pytest.mark.parametrize("first_request", ["token", "jwks"])
def test_first_request_creates_the_signing_key(make_client, http, first_request):
    client, secret = make_client()
    assert not SigningKey.objects.exists()

    if first_request == "token":
        token = request_token(http, client, secret)["access_token"]
    else:
        served_jwks(http)
        token = request_token(http, client, secret)["access_token"]

    key = SigningKey.objects.get()
    assert (key.algorithm, key.rotated_out, key.published_until) == ("ES256", None, None)
    assert kid_of(token) == key.kid
    keyring_invalidate()
    request_token(http, client, secret)
    assert served_kids(http) == {key.kid}
    assert SigningKey.objects.count() == 1


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_jwks_publishes_only_public_members(db, http, settings, algorithm):
    settings.SIGNING_ALG = algorithm
    response = http.get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    (jwk,) = json.loads(response.content)["keys"]
    assert set(jwk) == PUBLIC_MEMBERS[KTY[algorithm]]
    assert "d" not in jwk
    assert (jwk["kty"], jwk["use"], jwk["alg"]) == (KTY[algorithm], "sig", algorithm)
    assert jwk["kid"] == rfc7638_thumbprint(jwk) == SigningKey.objects.get().kid


# --- rotation ----------------------------------------------------------------------------


@pytest.mark.parametrize("rotate", ROTATIONS)
def test_rotation_new_tokens_carry_the_new_kid_and_old_tokens_still_verify(make_client, http, rotate):
    client, secret = make_client()
    old_token = request_token(http, client, secret)["access_token"]
    old_kid = kid_of(old_token)

    new_kid = rotate()

    assert new_kid != old_kid
    assert SigningKey.objects.signers().get().kid == new_kid
    new_token = request_token(http, client, secret)["access_token"]
    assert kid_of(new_token) == new_kid
    assert served_kids(http) == {old_kid, new_kid}
    assert jwks_verify(http, old_token)["sub"] == client.client_id
    assert jwks_verify(http, new_token)["sub"] == client.client_id


@pytest.mark.parametrize("rotate", ROTATIONS)
@pytest.mark.parametrize(
    ("server_ttl", "client_ttls", "longest"),
    [
        pytest.param(3600, [120], 3600, id="server default is longest"),
        pytest.param(600, [120, 7200], 7200, id="a client TTL is longest"),
    ],
)
def test_rotation_publishes_the_old_key_for_the_longest_token_lifetime(
    make_client, http, settings, rotate, server_ttl, client_ttls, longest
):
    settings.ACCESS_TOKEN_TTL = server_ttl
    made = [make_client(access_token_ttl=ttl) for ttl in [None, *client_ttls]]
    old_tokens = [request_token(http, client, secret)["access_token"] for client, secret in made]
    old = SigningKey.objects.get()

    before = timezone.now()
    rotate()

    old.refresh_from_db()
    assert before <= old.rotated_out <= timezone.now()
    assert old.published_until >= old.rotated_out + timedelta(seconds=longest)
    last_expiry = max(jwks_verify(http, token)["exp"] for token in old_tokens)
    assert last_expiry <= old.published_until.timestamp()
    assert old.kid in served_kids(http)


def test_old_key_leaves_the_jwks_once_published_until_has_passed(make_client, http):
    client, secret = make_client()
    old_token = request_token(http, client, secret)["access_token"]
    old = SigningKey.objects.get()
    new = key_rotate(now=timezone.now())
    old.refresh_from_db()
    until = old.published_until

    assert key_prune(now=until - timedelta(seconds=1)) == 0
    keyring_invalidate()
    assert served_kids(http) == {old.kid, new.kid}
    jwks_verify(http, old_token)

    assert key_prune(now=until) == 1
    keyring_invalidate()
    assert served_kids(http) == {new.kid}
    assert list(SigningKey.objects.values_list("kid", flat=True)) == [new.kid]
    with pytest.raises(KeyError):
        jwks_verify(http, old_token)


def test_jwks_leaves_out_keys_past_published_until_even_before_pruning(db, http, settings):
    settings.ACCESS_TOKEN_TTL = 3600
    long_ago = timezone.now() - timedelta(days=2)
    old = key_rotate(now=long_ago - timedelta(hours=1))
    new = key_rotate(now=long_ago)
    old.refresh_from_db()

    assert old.published_until < timezone.now()
    assert served_kids(http) == {new.kid}
    assert SigningKey.objects.count() == 2


def test_rotatekeys_deletes_retired_keys_and_keeps_published_ones(db, http, settings):
    settings.ACCESS_TOKEN_TTL = 3600
    long_ago = timezone.now() - timedelta(days=2)
    retired = key_rotate(now=long_ago - timedelta(hours=1))
    previous = key_rotate(now=long_ago)

    out = io.StringIO()
    call_command("rotatekeys", stdout=out)

    current = SigningKey.objects.signers().get()
    assert out.getvalue() == f"New signing key: kid={current.kid} alg=ES256\nDeleted 1 retired key(s).\n"
    assert not SigningKey.objects.filter(kid=retired.kid).exists()
    assert served_kids(http) == {previous.kid, current.kid}

    out = io.StringIO()
    call_command("rotatekeys", stdout=out)

    newest = SigningKey.objects.signers().get()
    assert out.getvalue() == f"New signing key: kid={newest.kid} alg=ES256\n"
    assert served_kids(http) == {previous.kid, current.kid, newest.kid}


# --- algorithms --------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_signing_alg_setting_picks_the_algorithm_of_the_first_key(make_client, http, settings, algorithm):
    settings.SIGNING_ALG = algorithm
    client, secret = make_client()
    token = request_token(http, client, secret)["access_token"]

    header = jwt.get_unverified_header(token)
    assert header == {"alg": algorithm, "typ": "at+jwt", "kid": SigningKey.objects.get().kid}
    assert jwks_verify(http, token)["sub"] == client.client_id
    (jwk,) = served_jwks(http)["keys"]
    assert (jwk["kty"], jwk["alg"]) == (KTY[algorithm], algorithm)


@pytest.mark.parametrize("rotate", ROTATIONS)
@pytest.mark.parametrize("algorithm", ["RS256", "EdDSA"])
def test_rotation_to_another_algorithm(make_client, http, settings, rotate, algorithm):
    settings.SIGNING_ALG = "ES256"
    client, secret = make_client()
    old_token = request_token(http, client, secret)["access_token"]

    new_kid = rotate(algorithm)

    new_token = request_token(http, client, secret)["access_token"]
    assert jwt.get_unverified_header(new_token) == {"alg": algorithm, "typ": "at+jwt", "kid": new_kid}
    assert jwt.get_unverified_header(old_token)["alg"] == "ES256"
    assert jwks_verify(http, old_token)["sub"] == client.client_id
    assert jwks_verify(http, new_token)["sub"] == client.client_id


# --- private keys at rest ----------------------------------------------------------------

PASSPHRASE = "correct horse battery staple, for tests only"


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_private_key_is_encrypted_at_rest_when_a_key_is_configured(make_client, http, settings, algorithm):
    settings.SIGNING_ALG = algorithm
    settings.SIGNING_KEY_ENCRYPTION_KEY = PASSPHRASE
    client, secret = make_client()
    token = request_token(http, client, secret)["access_token"]

    row = SigningKey.objects.get()
    assert row.encrypted is True
    assert row.private_key.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    with pytest.raises(TypeError):
        load_pem_private_key(row.private_key.encode(), password=None)
    load_pem_private_key(row.private_key.encode(), password=PASSPHRASE.encode())
    assert jwks_verify(http, token)["sub"] == client.client_id


def test_private_key_is_plain_pkcs8_without_an_encryption_key(make_client, http, settings):
    settings.SIGNING_KEY_ENCRYPTION_KEY = ""
    client, secret = make_client()
    token = request_token(http, client, secret)["access_token"]

    row = SigningKey.objects.get()
    assert row.encrypted is False
    assert row.private_key.startswith("-----BEGIN PRIVATE KEY-----\n")
    load_pem_private_key(row.private_key.encode(), password=None)
    assert jwks_verify(http, token)["sub"] == client.client_id


def test_turning_encryption_on_keeps_plain_keys_usable_and_encrypts_new_ones(make_client, http, settings):
    settings.SIGNING_KEY_ENCRYPTION_KEY = ""
    client, secret = make_client()
    plain_token = request_token(http, client, secret)["access_token"]

    settings.SIGNING_KEY_ENCRYPTION_KEY = PASSPHRASE
    new = key_rotate()
    encrypted_token = request_token(http, client, secret)["access_token"]

    new.refresh_from_db()
    assert new.encrypted is True
    assert new.private_key.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert kid_of(encrypted_token) == new.kid
    assert jwks_verify(http, plain_token)["sub"] == client.client_id
    assert jwks_verify(http, encrypted_token)["sub"] == client.client_id


# --- metadata (RFC 8414) -----------------------------------------------------------------

METADATA_PATHS = ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]


@pytest.mark.parametrize("path", METADATA_PATHS)
@pytest.mark.parametrize("issuer", [ISSUER, "https://auth.example.com"])
def test_metadata(db, http, settings, path, issuer):
    settings.ISSUER = issuer
    response = http.get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert {name: body[name] for name in (
        "issuer", "token_endpoint", "jwks_uri", "grant_types_supported", "token_endpoint_auth_methods_supported",
    )} == {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt",
                                                  "tls_client_auth", "self_signed_tls_client_auth"],
    }
    assert "response_types_supported" in body  # RFC 8414 §2: REQUIRED


def test_both_metadata_paths_serve_the_same_document_whose_urls_work(make_client, http):
    first, second = (http.get(path) for path in METADATA_PATHS)
    assert first.content == second.content
    body = json.loads(first.content)

    client, secret = make_client()
    token = post_token(
        http, {"grant_type": "client_credentials"}, path=urlsplit(body["token_endpoint"]).path,
        authorization=basic(client.client_id, secret),
    )
    assert token.status_code == 200, token.content
    jwks = http.get(urlsplit(body["jwks_uri"]).path)
    assert jwks.status_code == 200
    served = {key["kid"] for key in json.loads(jwks.content)["keys"]}
    assert served == {kid_of(json.loads(token.content)["access_token"])}


# --- live: rotation reaches every gunicorn worker ---------------------------------------

from tests.live import Call, batch, by_worker, call, on_every_worker, served_by  # noqa: E402


@pytest.mark.live
def test_live_rotation_reaches_every_worker_and_old_tokens_still_verify(gunicorn_server):
    server = gunicorn_server

    def get_token() -> Call:
        issued = call(server, "/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(server.client_id, server.client_secret), timeout=5)
        assert issued.response.status_code == 200, issued.response.text
        return issued

    def kid(issued: Call) -> str:
        return kid_of(issued.response.json()["access_token"])

    # Before rotation: keep asking until both workers have signed (and cached their key ring).
    before = on_every_worker(server, get_token, what="signed")
    workers = set(served_by(server, before).values())
    assert len(workers) == 2, f"one worker served all {len(before)} requests"
    assert len({kid(c) for c in before}) == 1
    old_kid = kid(before[0])

    rotation = subprocess.Popen(
        [PYTHON, "manage.py", "rotatekeys"], cwd=PROJECT, env=server.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # Keep the workers busy while the rotation commits, so that their cached key
    # rings are fresh when it lands and they must notice it on their own.
    during: list[Call] = []
    while rotation.poll() is None and len(during) < 200:
        during += batch(get_token)
    stdout, stderr = rotation.communicate(timeout=60)
    assert rotation.returncode == 0, stderr
    new_kid = re.search(r"kid=(\S+)", stdout)[1]  # type: ignore[index]
    assert new_kid != old_kid

    # After rotation: poll until every worker signs with the new key (bounded).
    after = on_every_worker(
        server, get_token, until=lambda c: kid(c) == new_kid, what="signed with the new key", seconds=15,
    )
    since = by_worker(server, during + after)  # each worker's tokens since the rotation began, in its order
    switched = {worker for worker, calls in since.items() if any(kid(c) == new_kid for c in calls)}
    assert switched == workers, f"workers {workers - switched} still sign with {old_kid}"

    assert set(served_by(server, before + during + after).values()) == workers
    for worker, calls in since.items():
        kids = [kid(c) for c in calls]
        first_new = kids.index(new_kid)
        assert set(kids[first_new:]) == {new_kid}, f"worker {worker} went back to the old key: {kids}"
    last = [get_token() for _ in range(10)]
    assert {kid(c) for c in last} == {new_kid}

    jwks = requests.get(f"{server.base_url}/.well-known/jwks.json", timeout=5).json()
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, new_kid}
    keyset = jwt.PyJWKSet.from_dict(jwks)
    tokens = [c.response.json()["access_token"] for c in before + during + after + last]
    old_tokens = [token for token in tokens if kid_of(token) == old_kid]
    new_tokens = [token for token in tokens if kid_of(token) == new_kid]
    assert len(old_tokens) >= len(before)
    for token in [*old_tokens, *new_tokens[-3:]]:
        claims = jwt.decode(
            token, key=keyset[kid_of(token)], algorithms=["ES256"], issuer=server.base_url,
            audience=server.base_url,
        )
        assert claims["sub"] == server.client_id


# --- one signer, even under races; a database outage keeps the cached keys serving --------


def test_two_signers_cannot_exist(db):
    from django.db import IntegrityError, transaction

    from tokens.keys import key_generate
    from tokens.models import SigningKey

    key_generate(algorithm="ES256", now=timezone.now()).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        key_generate(algorithm="ES256", now=timezone.now()).save()
    assert SigningKey.objects.signers().count() == 1


def test_losing_the_first_key_race_is_harmless(db, monkeypatch):
    """A process that saw no signer, then lost the insert to another process, uses the winner's key."""
    from tokens import keys
    from tokens.models import SigningKey

    winner = keys.key_generate(algorithm="ES256", now=timezone.now())
    winner.save()
    monkeypatch.setattr(SigningKey.objects, "signers", lambda: SigningKey.objects.none())
    keys._create_first_key(timezone.now())
    monkeypatch.undo()
    assert list(SigningKey.objects.signers().values_list("kid", flat=True)) == [winner.kid]
    assert keys.keyring().signer.kid == winner.kid


def test_concurrent_first_requests_leave_one_signer(transactional_db):
    """Eight processes' first requests at once (threads with their own connections) on an empty table."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection, connections

    from tokens import keys
    from tokens.models import SigningKey

    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers (IMMEDIATE transactions): no race to test")

    def first_request(_: int) -> str:
        try:
            cache = keys._KeyRingCache()
            keys._build(cache, timezone.now())
            assert cache.ring is not None
            return cache.ring.signer.kid
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        kids = set(pool.map(first_request, range(8)))
    assert SigningKey.objects.signers().count() == 1
    assert kids == {SigningKey.objects.signers().get().kid}


def test_cached_keys_keep_serving_while_the_database_is_down(make_client, http, monkeypatch, settings):
    from django.db import OperationalError

    from tokens import keys

    before = http.get("/.well-known/jwks.json").content

    def down(now):
        raise OperationalError("connection refused")

    monkeypatch.setattr(keys, "_published_rows", down)
    keys.keyring_invalidate()
    response = http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.content == before


def test_only_the_signers_private_key_is_decrypted(make_client, http, settings):
    """A rotated-out key is published from its public JWK: a lost passphrase for an old key
    cannot break the token or JWKS endpoints."""
    from tokens import keys
    from tokens.models import SigningKey

    settings.SIGNING_KEY_ENCRYPTION_KEY = "first passphrase"
    old = keys.key_rotate()
    settings.SIGNING_KEY_ENCRYPTION_KEY = "second passphrase"
    new = keys.key_rotate()
    keys._cache.__init__()
    ring = keys.keyring()
    assert ring.signer.kid == new.kid and ring.signer.key.is_private
    assert not ring.by_kid[old.kid].key.is_private
    assert SigningKey.objects.get(kid=old.kid).encrypted
