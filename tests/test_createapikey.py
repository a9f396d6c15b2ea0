"""``manage.py createapikey``: a key printed once that works; bad input makes nothing."""

from __future__ import annotations

import io
import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils.dateparse import parse_datetime

from clients import secrets as client_secrets
from clients.models import ApiKey, AuditEvent
from tests.conftest import basic, post_token

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = str(PROJECT / ".venv" / "bin" / "python")


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("createapikey", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_json_output_holds_a_key_that_introspects_active(make_client, http):
    client, secret = make_client(client_id="billing", allowed_scopes=["invoices:read", "invoices:write"])
    out, _ = run("billing", "--name", "nightly export", "--scope", "invoices:read", "--expires-in", "7d", "--json")
    data = json.loads(out)
    record = ApiKey.objects.get()
    assert data == {
        "client_id": "billing", "api_key": data["api_key"], "prefix": record.prefix, "name": "nightly export",
        "scope": "invoices:read", "expires": record.expires.isoformat(),
    }
    assert client_secrets.is_api_key(data["api_key"])
    assert parse_datetime(data["expires"]) - record.created == timedelta(days=7)
    response = post_token(http, {"token": data["api_key"]}, path="/oauth/introspect",
                          authorization=basic("billing", secret))
    assert json.loads(response.content)["active"] is True
    assert AuditEvent.objects.filter(action="api_key.created").get().actor == "cli"


def test_text_output_and_defaults(make_client):
    make_client(client_id="billing", allowed_scopes=["a", "b"], default_scopes=["a"])
    out, err = run("billing", "--name", "cron")
    record = ApiKey.objects.get()
    lines = out.splitlines()
    assert lines[0] == "Client ID: billing"
    assert lines[1].startswith(f"API key: {record.prefix}") and client_secrets.is_api_key(lines[1][9:])
    assert lines[2:] == ["Scope: a", f"Expires: {record.expires.isoformat()}"]
    assert record.expires - record.created == timedelta(days=90)
    assert err == "Store the key now: it is not shown again.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "--name", "n"], "No client 'nobody'."),
        (["billing", "--name", "n", "--scope", "admin"], "--scope: Not allowed for this client: admin."),
        (["billing", "--name", "n", "--expires-in", "soon"],
         "--expires-in: not a duration: 'soon' (use e.g. 300, 90s, 10m, 1h, 1d)"),
        (["billing", "--name", "n", "--expires-in", "366d"],
         "--expires-in: At most API_KEY_MAX_LIFETIME (31536000 seconds)."),
        (["billing", "--name", " "], "--name: A name of 1 to 255 characters is required."),
    ],
)
def test_bad_input_is_an_error_and_makes_nothing(make_client, args, message):
    make_client(client_id="billing", allowed_scopes=["a"])
    with pytest.raises(CommandError) as raised:
        run(*args)
    assert str(raised.value) == message
    assert not ApiKey.objects.exists()


def test_name_is_required(make_client):
    make_client(client_id="billing")
    with pytest.raises(CommandError, match="--name"):
        run("billing")


def test_exit_codes_as_a_shell_sees_them(tmp_path):
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        process = subprocess.Popen([PYTHON, "manage.py", *args], cwd=PROJECT, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate(timeout=120)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    assert manage("migrate", "--noinput").returncode == 0
    assert manage("createclient", "svc", "--client-id", "svc", "--scope", "a").returncode == 0
    done = manage("createapikey", "svc", "--name", "cron", "--json")
    assert done.returncode == 0, done.stderr
    assert client_secrets.is_api_key(json.loads(done.stdout)["api_key"])
    refused = manage("createapikey", "svc", "--name", "cron", "--scope", "b")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == "CommandError: --scope: Not allowed for this client: b.\n"
