"""An API key made in the admin of a live two-worker gunicorn works with curl against
introspection and the management API, and stops working on every worker at the next
request after "Revoke" (DESIGN §9.5)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import requests

from tests.live import Call, LiveServer, call, manage, on_every_worker

KEY = re.compile(r"asak_[A-Za-z0-9_-]{60}")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def admin_session(server: LiveServer) -> requests.Session:
    env = {**server.env, "DJANGO_SUPERUSER_PASSWORD": "operator-password-1"}
    manage(env, "createsuperuser", "--noinput", "--username", "operator", "--email", "op@example.com")
    session = requests.Session()
    page = session.get(f"{server.base_url}/admin/login/", timeout=10)
    token = CSRF.search(page.text)
    assert token, page.text[:500]
    response = session.post(f"{server.base_url}/admin/login/?next=/admin/", timeout=10, data={
        "csrfmiddlewaretoken": token[1], "username": "operator", "password": "operator-password-1",
        "next": "/admin/",
    })
    assert response.ok and response.url.endswith("/admin/"), response.text[:500]
    return session


def admin_form(session: requests.Session, url: str) -> dict[str, str]:
    page = session.get(url, timeout=10)
    assert page.status_code == 200, page.text[:500]
    token = CSRF.search(page.text)
    assert token
    fields = {"csrfmiddlewaretoken": token[1]}
    seen = re.search(r'name="seen" value="(\d+)"', page.text)
    if seen:
        fields["seen"] = seen[1]
    return fields


def curl(*args: str) -> tuple[int, str]:
    """curl as an operator types it; returns the status code and the body."""
    done = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


@pytest.mark.live
def test_a_key_made_in_the_admin_works_with_curl_and_stops_on_every_worker_after_revoke(gunicorn_server):
    server = gunicorn_server
    manage(server.env, "createclient", "ops", "--client-id", "ops-bot", "--scope", "clients:read")
    pk = manage(server.env, "shell", "-c",
                "from clients.models import Client; print(Client.objects.get(client_id='ops-bot').pk)").split()[-1]
    assert pk.isdigit(), pk
    session = admin_session(server)
    create_url = f"{server.base_url}/admin/clients/client/{pk}/create-api-key/"
    reveal = session.post(create_url, timeout=10, data={
        **admin_form(session, create_url), "name": "cron", "scope": "clients:read", "expires_in": "30d",
    })
    assert reveal.status_code == 200 and reveal.headers["Cache-Control"].startswith("no-store")
    keys = KEY.findall(reveal.text)
    assert len(set(keys)) == 1
    key = keys[0]
    # The key's reveal is the only page that shows it.
    client_page = session.get(f"{server.base_url}/admin/clients/client/{pk}/change/", timeout=10)
    assert key not in client_page.text and key[:12] in client_page.text

    # As README writes them.
    introspect = ["-u", f"{server.client_id}:{server.client_secret}", "--data-urlencode", f"token={key}",
                  f"{server.base_url}/oauth/introspect"]
    status, body = curl(*introspect)
    assert status == 200
    facts = json.loads(body)
    assert {k: facts[k] for k in ("active", "token_type", "scope", "client_id", "sub")} == {
        "active": True, "token_type": "Bearer", "scope": "clients:read", "client_id": "ops-bot", "sub": "ops-bot"}
    assert set(facts) == {"active", "token_type", "scope", "client_id", "sub", "exp", "iat"}
    status, body = curl("-H", f"Authorization: Bearer {key}", f"{server.base_url}/client/ops-bot")
    assert status == 200 and json.loads(body)["client_id"] == "ops-bot"

    def introspect_live() -> Call:
        answered = call(server, "/oauth/introspect", data={"token": key},
                        auth=(server.client_id, server.client_secret), timeout=5)
        assert answered.response.status_code == 200
        return answered

    def manage_live() -> Call:
        return call(server, "/client/ops-bot", method="GET", headers={"Authorization": f"Bearer {key}"}, timeout=5)

    warm = on_every_worker(server, introspect_live, what="introspected the key before the revocation")
    assert all(c.response.json()["active"] for c in warm)
    warm = on_every_worker(server, manage_live, what="took the key before the revocation")
    assert all(c.response.status_code == 200 for c in warm)

    revoke_url = f"{server.base_url}/admin/clients/client/{pk}/revoke-api-key/"
    revoked = session.post(revoke_url, timeout=10, data={**admin_form(session, revoke_url), "key_prefix": key[:12]})
    assert revoked.status_code == 200 and f"API key {key[:12]}… revoked" in revoked.text

    answers = on_every_worker(server, introspect_live, what="introspected the key after the revocation")
    assert all(c.response.json() == {"active": False} for c in answers)
    answers = on_every_worker(server, manage_live, what="refused the key after the revocation")
    assert all(c.response.status_code == 401 for c in answers)
    assert all(c.response.headers["WWW-Authenticate"] == 'Bearer realm="authserver", error="invalid_token"'
               for c in answers)
    status, body = curl(*introspect)
    assert (status, json.loads(body)) == (200, {"active": False})
