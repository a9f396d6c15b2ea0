"""API keys in the admin (DESIGN §9.5): the client page lists them, "Create API key" shows
the key once, "Revoke" stops it; the dashboard lists keys expiring within 14 days; the
owner can be changed on the client page."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from django.test import Client as HttpClient
from django.utils import timezone
from django.utils.cache import get_max_age

from clients.models import ApiKey, AuditEvent, Client
from clients.services import api_key_create
from tests.conftest import basic, post_token
from tests.test_admin import change_url, form_data

KEY = re.compile(rb"asak_[A-Za-z0-9_-]{60}")


def revealed_key(response: Any) -> str:
    """The one key on the reveal page; fails unless it appears exactly once."""
    assert response.status_code == 200, response.content[:2000]
    assert [t.name for t in response.templates][:1] == ["admin/clients/api_key_reveal.html"]
    found = KEY.findall(response.content)
    assert len(found) == 1, found
    assert "no-store" in response["Cache-Control"]
    assert get_max_age(response) == 0
    assert b"will not be shown again" in response.content
    return str(found[0].decode("ascii"))


def introspect(http: HttpClient, auth: str, token: str) -> dict[str, Any]:
    response = post_token(http, {"token": token}, path="/oauth/introspect", authorization=auth)
    assert response.status_code == 200
    return dict(json.loads(response.content))


def test_create_api_key_shows_it_once_and_it_works(admin_client, make_client, http):
    client, secret = make_client(client_id="svc", allowed_scopes=["clients:read", "invoices:read"])
    page = admin_client.get(change_url(client, "create-api-key"))
    assert page.status_code == 200 and b'name="name"' in page.content
    seen = page.context["form"].initial["seen"]
    response = admin_client.post(change_url(client, "create-api-key"), {
        "name": "nightly export", "scope": "clients:read", "expires_in": "30d", "seen": seen,
    })
    key = revealed_key(response)
    record = ApiKey.objects.get()
    assert (record.name, record.scopes, record.expires - record.created) == (
        "nightly export", ["clients:read"], timedelta(days=30))
    assert record.hash != key and key.startswith(record.prefix)
    assert introspect(http, basic("svc", secret), key)["active"] is True
    assert http.get("/client/svc", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    assert AuditEvent.objects.filter(action="api_key.created").get().actor == "user:admin"
    # Posted again (reload), it makes no second key.
    again = admin_client.post(change_url(client, "create-api-key"), {"name": "nightly export", "seen": seen})
    assert again.status_code == 200 and "seen" in again.context["form"].errors
    assert ApiKey.objects.count() == 1
    # The client page lists the key, never the key itself or its hash.
    client_page = admin_client.get(change_url(client))
    assert client_page.status_code == 200
    assert key.encode() not in client_page.content and record.hash.encode() not in client_page.content
    assert not KEY.search(client_page.content)
    inline = client_page.content.decode()
    for shown in ("nightly export", record.prefix, "clients:read", "Create API key", "Revoke…"):
        assert shown in inline


def test_create_api_key_refuses_bad_input_and_makes_nothing(admin_client, make_client):
    client, _ = make_client(client_id="svc", allowed_scopes=["a"])
    seen = admin_client.get(change_url(client, "create-api-key")).context["form"].initial["seen"]
    for data, field, message in [
        ({"name": "", "seen": seen}, "name", "This field is required."),
        ({"name": "n", "scope": "b", "seen": seen}, "scope", "Not allowed for this client: b."),
        ({"name": "n", "expires_in": "soon", "seen": seen}, "expires_in", "Not a duration: soon"),
        ({"name": "n", "expires_in": "400d", "seen": seen}, "expires_in", "At most API_KEY_MAX_LIFETIME"),
    ]:
        response = admin_client.post(change_url(client, "create-api-key"), data)
        assert response.status_code == 200
        assert [t.name for t in response.templates][:1] == ["admin/action_confirm.html"]
        assert message in " ".join(response.context["form"].errors[field])
        assert not KEY.search(response.content)
    assert not ApiKey.objects.exists()


def test_revoke_api_key_stops_it_at_once(admin_client, make_client, http):
    client, secret = make_client(client_id="svc", allowed_scopes=["clients:read"])
    issued = api_key_create(client=client, name="cron")
    other = api_key_create(client=client, name="webhook")
    prefix = issued.record.prefix
    page = admin_client.get(change_url(client, "revoke-api-key") + f"?prefix={prefix}")
    assert page.status_code == 200 and f'value="{prefix}"'.encode() in page.content
    assert not KEY.search(page.content)
    response = admin_client.post(change_url(client, "revoke-api-key"), {"key_prefix": prefix}, follow=True)
    assert response.redirect_chain == [(change_url(client), 302)]
    assert f"API key {prefix}… revoked".encode() in response.content
    assert introspect(http, basic("svc", secret), issued.api_key) == {"active": False}
    assert introspect(http, basic("svc", secret), other.api_key)["active"] is True
    # Still listed, marked revoked.
    row = response.content.decode().split(prefix, 1)[1].split("</tr>", 1)[0]
    assert "never" in row and "Revoke…" not in row
    again = admin_client.post(change_url(client, "revoke-api-key"), {"key_prefix": prefix})
    assert again.status_code == 200 and "key_prefix" in again.context["form"].errors


def test_api_key_pages_need_change_permission(make_client, django_user_model):
    client, _ = make_client(client_id="svc")
    viewer = django_user_model.objects.create_user("viewer", password="x" * 12, is_staff=True)
    browser = HttpClient()
    browser.force_login(viewer)
    for suffix in ("create-api-key", "revoke-api-key"):
        assert browser.get(change_url(client, suffix)).status_code in (302, 403)
        assert browser.post(change_url(client, suffix), {"name": "n", "seen": "0"}).status_code in (302, 403)
    assert not ApiKey.objects.exists()


def test_the_dashboard_lists_api_keys_expiring_within_14_days(admin_client, make_client):
    client, _ = make_client(client_id="svc")
    soon = api_key_create(client=client, name="soon", expires_in=13 * 86400)
    api_key_create(client=client, name="later", expires_in=15 * 86400)
    revoked = api_key_create(client=client, name="revoked", expires_in=86400)
    ApiKey.objects.filter(pk=revoked.record.pk).update(revoked=timezone.now())
    page = admin_client.get("/admin/clients/client/dashboard/").content.decode()
    table = page.split('id="dashboard-expiring-keys"', 1)[1].split("</table>", 1)[0]
    assert f"{soon.record.prefix}… soon" in table
    assert "later" not in table and revoked.record.prefix not in table
    assert not KEY.search(page.encode())


def test_the_owner_can_be_changed_on_the_client_page(admin_client, make_client, django_user_model):
    client, _ = make_client(client_id="svc", allowed_scopes=["a"])
    alice = django_user_model.objects.create_user("alice")
    response = admin_client.post(change_url(client), form_data(allowed_scopes="a", user=alice.pk))
    assert response.status_code == 302, response.content[:3000]
    assert Client.objects.get(pk=client.pk).user == alice
    event = AuditEvent.objects.filter(action="client.updated").get()
    assert event.changes["owner"] == [None, "alice"]
    admin_client.post(change_url(client), form_data(allowed_scopes="a", user=""))
    assert Client.objects.get(pk=client.pk).user is None
