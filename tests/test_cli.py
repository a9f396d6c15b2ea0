"""``manage.py createclient`` and ``manage.py rotatekeys``."""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import jwt
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from clients.models import Client, ClientSecret, Role, Tenant
from tests.conftest import assert_oauth_error, basic, jwks_verify, post_token
from tokens.models import SigningKey

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = str(PROJECT / ".venv" / "bin" / "python")


def run(*args: str) -> tuple[str, str]:
    """``call_command`` with captured stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def create(*args: str) -> tuple[Client, str]:
    out, _ = run("createclient", *args, "--json")
    created = json.loads(out)
    return Client.objects.get(client_id=created["client_id"]), created["client_secret"]


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (Client, ClientSecret, Tenant, Role)}


def token_response(http: Any, client_id: str, secret: str, *, method: str = "basic", **extra: Any) -> Any:
    data = {"grant_type": "client_credentials"}
    if method == "basic":
        return post_token(http, data, authorization=basic(client_id, secret), **extra)
    return post_token(http, {**data, "client_id": client_id, "client_secret": secret}, **extra)


# --- output ------------------------------------------------------------------------------


def test_createclient_prints_the_id_and_the_secret_once(db, http):
    out, err = run("createclient", "billing backend")

    match = re.fullmatch(r"Client ID: (\S+)\nClient Secret: (\S+)\n", out)
    assert match, out
    client_id, secret = match.groups()
    assert "not shown again" in err
    client = Client.objects.get(client_id=client_id)
    assert (client.name, client.enabled, client.grant_types) == ("billing backend", True, ["client_credentials"])
    response = token_response(http, client_id, secret)
    assert response.status_code == 200, response.content


def test_createclient_json_prints_exactly_one_object(db, http):
    out, _ = run("createclient", "svc", "--json")

    created = json.loads(out)  # raises on anything besides one JSON document
    assert set(created) == {"client_id", "client_secret"}
    assert Client.objects.filter(client_id=created["client_id"]).exists()
    for method in ("basic", "post"):
        response = token_response(http, created["client_id"], created["client_secret"], method=method)
        assert response.status_code == 200, response.content


def test_createclient_stores_only_a_prefix_and_a_hash(db):
    client, secret = create("svc")

    record = ClientSecret.objects.get(client=client)
    assert len(record.prefix) >= 8
    assert secret.startswith(record.prefix)
    assert re.fullmatch(r"[0-9a-f]{64}", record.hash)
    # No column of any row in the database holds the secret or any 16 characters of
    # its unshown part (prefix excluded).
    unshown = secret[len(record.prefix):]
    pieces = {unshown[i:i + 16] for i in range(len(unshown) - 15)}
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    text = bytes(value).decode("latin-1") if isinstance(value, bytes | memoryview) else str(value)
                    if any(piece in text for piece in pieces):
                        found.append((table, text))
    assert found == []


# --- options -----------------------------------------------------------------------------


def test_createclient_sets_every_option(db, http):
    Tenant.objects.create(slug="globex", name="Globex Corporation")
    Role.objects.create(name="admin")
    before = row_counts()

    client, secret = create(
        "team service",
        "--client-id", "team:svc@prod",
        "--scope", "read", "--scope", "write delete",
        "--default-scope", "read",
        "--tenant", "acme", "--tenant", "globex",
        "--role", "admin", "--role", "acme/ops", "--role", "initech/viewer",
        "--auth-method", "client_secret_post",
        "--ttl", "10m",
        "--audience", "https://api.example.com", "--audience", "https://billing.example.com",
        "--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::/32",
    )

    assert client.client_id == "team:svc@prod"
    assert client.name == "team service"
    assert client.allowed_scopes == ["read", "write", "delete"]
    assert client.default_scopes == ["read"]
    assert sorted(t.slug for t in client.tenants.all()) == ["acme", "globex"]
    assert sorted(r.claim_value for r in client.roles.all()) == ["acme/ops", "admin", "initech/viewer"]
    assert client.token_endpoint_auth_method == "client_secret_post"
    assert client.access_token_ttl == 600
    assert client.audiences == ["https://api.example.com", "https://billing.example.com"]
    assert client.allowed_ips == ["10.0.0.0/8", "2001:db8::/32"]
    # Missing tenants and roles were created; existing ones were reused.
    assert Tenant.objects.get(slug="globex").name == "Globex Corporation"
    assert sorted(Tenant.objects.values_list("slug", flat=True)) == ["acme", "globex", "initech"]
    assert Role.objects.get(name="admin").tenant is None
    assert Role.objects.get(name="ops").tenant.slug == "acme"
    assert Role.objects.get(name="viewer").tenant.slug == "initech"
    assert row_counts() == {**before, "Client": before["Client"] + 1, "ClientSecret": 1, "Tenant": 3, "Role": 3}

    # The token endpoint honours all of it.
    response = token_response(http, client.client_id, secret, method="post", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200, response.content
    body = json.loads(response.content)
    assert body == {"access_token": body["access_token"], "token_type": "Bearer", "expires_in": 600, "scope": "read"}
    claims = jwks_verify(http, body["access_token"], audience="https://api.example.com")
    assert (claims["sub"], claims["aud"], sorted(claims["tenants"]), sorted(claims["roles"])) == (
        "team:svc@prod", "https://api.example.com", ["acme", "globex"], ["acme/ops", "admin", "initech/viewer"],
    )
    assert_oauth_error(token_response(http, client.client_id, secret, REMOTE_ADDR="10.1.2.3"), 401, "invalid_client")
    assert_oauth_error(
        token_response(http, client.client_id, secret, method="post", REMOTE_ADDR="192.0.2.1"), 401, "invalid_client"
    )


@pytest.mark.parametrize(("ttl", "seconds"), [("300", 300), ("90s", 90), ("10m", 600), ("1h", 3600)])
def test_createclient_ttl(db, http, ttl, seconds):
    client, secret = create("svc", "--ttl", ttl)

    assert client.access_token_ttl == seconds
    response = token_response(http, client.client_id, secret)
    assert response.status_code == 200, response.content
    claims = jwt.decode(json.loads(response.content)["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == seconds


@pytest.mark.parametrize(
    ("args", "stored", "works"),
    [
        pytest.param([], "", {"basic", "post"}, id="either"),
        pytest.param(["--auth-method", "client_secret_basic"], "client_secret_basic", {"basic"}, id="basic"),
        pytest.param(["--auth-method", "client_secret_post"], "client_secret_post", {"post"}, id="post"),
    ],
)
def test_createclient_auth_method(db, http, args, stored, works):
    client, secret = create("svc", *args)

    assert client.token_endpoint_auth_method == stored
    for method in ("basic", "post"):
        response = token_response(http, client.client_id, secret, method=method)
        if method in works:
            assert response.status_code == 200, response.content
        else:
            assert_oauth_error(response, 401, "invalid_client")


# --- bad input ---------------------------------------------------------------------------

# Each bad invocation also names a new tenant and new roles: if anything were
# half-created, these rows would show it.
WOULD_CREATE = ["--tenant", "newco", "--role", "auditor", "--role", "newco/ops", "--role", "brandnew/ops"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--client-id", "taken"], r"^--client-id: .*already exists", id="duplicate client id"),
        pytest.param(["--client-id", "my svc"], r"^--client-id: .*without spaces", id="client id with a space"),
        pytest.param(["--allow-ip", "10.0.0.0/33"], r"^--allow-ip: '10\.0\.0\.0/33' is not", id="bad CIDR"),
        pytest.param(["--allow-ip", "10.0.0.0/8", "--allow-ip", "example.com"], r"^--allow-ip: 'example\.com'",
                     id="bad CIDR among good ones"),
        pytest.param(["--ttl", "5x"], r"^--ttl: not a duration: '5x'", id="ttl 5x"),
        pytest.param(["--ttl", "0"], r"^--ttl: a duration must be positive", id="ttl 0"),
        pytest.param(["--auth-method", "client_secret_jwt"], r"--auth-method: invalid choice: 'client_secret_jwt'",
                     id="unknown auth method"),
        pytest.param(["--scope", "read", "--default-scope", "write"], r"^--default-scope: .*not allowed: write",
                     id="default scope not allowed"),
        pytest.param(["--role", "acme/"], r"^--role: .*'acme/' is not a role name", id="role without a name"),
        pytest.param(["--tenant", "acme!"], r"acme!", id="tenant that is not a slug"),
        pytest.param(["--role", "r" * 101], r"^--role: ", id="role name longer than its column"),
        pytest.param(["--client-id", "svc\n"], r"^--client-id: ", id="client id with a trailing newline"),
    ],
)
def test_createclient_refuses_bad_input_and_creates_nothing(db, args, message):
    create("existing", "--client-id", "taken", "--tenant", "acme")
    before = row_counts()

    with pytest.raises(CommandError, match=message):
        run("createclient", "svc", *WOULD_CREATE, *args)

    assert row_counts() == before
    assert not Tenant.objects.filter(slug__in=["newco", "brandnew", "acme!"]).exists()
    assert not Role.objects.filter(name__in=["auditor", "ops"]).exists()
    assert list(Client.objects.values_list("client_id", flat=True)) == ["taken"]


# --- exit codes, as a shell sees them ----------------------------------------------------


@pytest.fixture(scope="module")
def cli_database(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A migrated SQLite file of its own, and the environment to run manage.py against it."""
    path = tmp_path_factory.mktemp("cli") / "db.sqlite3"
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{path}"}
    done = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput"], cwd=PROJECT, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return path, env


def sqlite_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("clients_client", "clients_clientsecret", "clients_tenant", "clients_role")
        }


@pytest.mark.parametrize(
    ("args", "exit_code", "stderr"),
    [
        pytest.param(["--json", "--tenant", "acme"], 0, "", id="created"),
        pytest.param(["--allow-ip", "10.0.0.0/33", *WOULD_CREATE], 1,
                     "CommandError: --allow-ip: '10.0.0.0/33' is not an IP address or CIDR.\n", id="bad CIDR"),
        pytest.param(["--ttl", "0", *WOULD_CREATE], 1, "CommandError: --ttl: a duration must be positive, not '0'\n",
                     id="bad duration"),
        pytest.param(["--auth-method", "client_secret_jwt", *WOULD_CREATE], 2,
                     "argument --auth-method: invalid choice: 'client_secret_jwt'", id="argparse error"),
    ],
)
def test_createclient_exit_codes(cli_database, args, exit_code, stderr):
    path, env = cli_database
    before = sqlite_counts(path)

    done = subprocess.run(
        [PYTHON, "manage.py", "createclient", "svc", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
        timeout=60,
    )

    assert done.returncode == exit_code, done.stderr
    assert stderr in done.stderr
    after = sqlite_counts(path)
    if exit_code == 0:
        created = json.loads(done.stdout)
        assert set(created) == {"client_id", "client_secret"}
        assert after["clients_client"] == before["clients_client"] + 1
        assert after["clients_clientsecret"] == before["clients_clientsecret"] + 1
    else:
        assert done.stdout == ""
        assert after == before


# --- rotatekeys --------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "algorithm"), [([], "ES256"), (["--algorithm", "EdDSA"], "EdDSA")])
def test_rotatekeys_prints_the_new_kid(db, http, args, algorithm):
    first, _ = run("rotatekeys")
    second, _ = run("rotatekeys", *args)

    signer = SigningKey.objects.signers().get()
    assert second == f"New signing key: kid={signer.kid} alg={algorithm}\n"
    assert signer.algorithm == algorithm
    assert first != second
    served = json.loads(http.get("/.well-known/jwks.json").content)
    assert signer.kid in {key["kid"] for key in served["keys"]}
