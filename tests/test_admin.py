"""The Django admin as the operator UI.

Secrets are made only through ``clients.services`` and shown once, on a page
rendered into the POST response; every test proves it with token requests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.cache import get_max_age

from clients.models import Client, ClientSecret, Role, Tenant
from clients.secrets import SECRET_LENGTH
from clients.services import secret_add
from tests.conftest import assert_oauth_error, basic, post_token
from tokens.keys import key_rotate, keyring
from tokens.models import SigningKey

SECRET = re.compile(rb"ascs_[A-Za-z0-9_-]{%d}" % (SECRET_LENGTH - len("ascs_")))
CHANGELIST = "/admin/clients/client/"
ADD = "/admin/clients/client/add/"

MakeClient = Callable[..., tuple[Client, str]]


def change_url(client: Client, suffix: str = "change") -> str:
    return f"/admin/clients/client/{client.pk}/{suffix}/"


def form_data(**overrides: Any) -> dict[str, Any]:
    """What the browser posts from the client page, with sensible values."""
    data: dict[str, Any] = {
        "client_id": "", "name": "billing backend", "enabled": "on", "user": "",
        "grant_types": ["client_credentials"], "allowed_scopes": "orders:read orders:write",
        "default_scopes": "", "audiences": "", "access_token_ttl": "", "token_endpoint_auth_method": "",
        "allowed_ips": "", "tenants": [], "roles": [],
        # The read-only secrets and API keys inlines still post their management forms.
        "secrets-TOTAL_FORMS": "0", "secrets-INITIAL_FORMS": "0",
        "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def revealed(response: Any) -> str:
    """The one secret on a reveal page; fails unless it appears exactly once."""
    assert response.status_code == 200, response.content[:2000]
    assert [t.name for t in response.templates][:1] == ["admin/clients/secret_reveal.html"]
    found = SECRET.findall(response.content)
    assert len(found) == 1, found
    assert "no-store" in response["Cache-Control"]
    assert get_max_age(response) == 0
    assert b"will not be shown again" in response.content
    assert b'id="copy-secret"' in response.content
    return str(found[0].decode("ascii"))


def token_status(http: HttpClient, client_id: str, secret: str) -> int:
    response = post_token(http, {"grant_type": "client_credentials"}, authorization=basic(client_id, secret))
    if response.status_code != 200:
        assert_oauth_error(response, 401, "invalid_client")
    return int(response.status_code)


def assert_no_secret_material(content: bytes, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret.encode() not in content
    for digest in ClientSecret.objects.values_list("hash", flat=True):
        assert digest.encode() not in content
    assert not SECRET.search(content)


def seen(client: Client) -> str:
    newest = ClientSecret.objects.filter(client=client).order_by("-id").first()
    return str(newest.pk if newest else 0)


# --- changelist --------------------------------------------------------------------------


def test_changelist_shows_the_columns(admin_client, make_client, http):
    client, secret = make_client(
        client_id="billing-backend", name="Billing", allowed_scopes=["orders:read", "orders:write"],
        tenants=["acme", "globex"],
    )
    secret_add(client=client)
    assert token_status(http, client.client_id, secret) == 200
    disabled, _ = make_client(client_id="old-batch", name="Nightly batch", enabled=False)

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    for header in ("Client ID", "Name", "Enabled", "Tenants", "Scopes", "Live secrets", "Last used"):
        assert f">{header}<" in html, header
    row = _row(html, "billing-backend")
    assert "Billing" in row and "acme, globex" in row and "orders:read orders:write" in row
    assert '<td class="field-live_secrets">2</td>' in row
    assert "never" not in row  # the token request above used a secret
    other = _row(html, "old-batch")
    assert "never" in other and 'alt="False"' in other
    assert_no_secret_material(response.content, [secret])


def _row(html: str, client_id: str) -> str:
    match = re.search(rf"<tr>(?:(?!</tr>).)*>{re.escape(client_id)}</a>(?:(?!</tr>).)*</tr>", html, re.S)
    assert match, client_id
    return match.group(0)


def test_changelist_search_and_filters(admin_client, make_client):
    make_client(client_id="billing-backend", name="Billing", tenants=["acme"])
    make_client(client_id="reports", name="Reporting", token_endpoint_auth_method="client_secret_post")
    make_client(client_id="batch", name="Batch", enabled=False)
    acme = Tenant.objects.get(slug="acme")

    def listed(query: str) -> set[str]:
        response = admin_client.get(CHANGELIST + query)
        assert response.status_code == 200
        return {c.client_id for c in response.context["cl"].result_list}

    assert listed("?q=report") == {"reports"}
    assert listed("?q=Billing") == {"billing-backend"}
    assert listed("?enabled__exact=0") == {"batch"}
    assert listed(f"?tenants__id__exact={acme.pk}") == {"billing-backend"}
    assert listed("?token_endpoint_auth_method__exact=client_secret_post") == {"reports"}


@pytest.mark.parametrize("view", ["all", "tenant filter", "search"])
def test_changelist_queries_do_not_grow_with_the_clients(admin_client, make_client, view):
    def make(count: int) -> None:
        start = Client.objects.count()
        for n in range(start, start + count):
            client, _ = make_client(client_id=f"svc-{n:03}", tenants=["t1", f"t{n}"], allowed_scopes=["a"])
            secret_add(client=client)

    make(3)
    query = {"all": "", "tenant filter": f"?tenants__id__exact={Tenant.objects.get(slug='t1').pk}",
             "search": "?q=svc"}[view]
    admin_client.get(CHANGELIST)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(CHANGELIST + query).status_code == 200
    make(27)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(CHANGELIST + query)
    assert response.status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many]
    assert response.context["cl"].result_count == 30


def test_changelist_query_bound(admin_client, make_client, django_assert_max_num_queries):
    for n in range(30):
        make_client(client_id=f"svc-{n:03}", tenants=["acme", f"t{n}"])
    with django_assert_max_num_queries(8):
        assert admin_client.get(CHANGELIST).status_code == 200


# --- creating a client ---------------------------------------------------------------------


def test_add_client_reveals_its_secret_once_and_it_works(admin_client, http):
    page = admin_client.get(ADD)
    assert page.status_code == 200
    generated = page.context["adminform"].form.initial["client_id"]
    assert re.fullmatch(r"[a-z0-9]{24}", generated)

    response = admin_client.post(ADD, form_data(
        client_id="billing-backend", allowed_scopes="orders:read\norders:write", access_token_ttl="10m",
        allowed_ips="127.0.0.1/32\n10.0.0.0/8", audiences="https://api.example.com/",
    ))

    secret = revealed(response)
    assert b"billing-backend" in response.content
    client = Client.objects.get(client_id="billing-backend")
    assert (client.allowed_scopes, client.access_token_ttl, client.allowed_ips, client.audiences) == (
        ["orders:read", "orders:write"], 600, ["127.0.0.1/32", "10.0.0.0/8"], ["https://api.example.com/"]
    )
    assert client.grant_types == ["client_credentials"]
    assert token_status(http, "billing-backend", secret) == 200
    # The stored row holds only the prefix and a keyed hash.
    (row,) = ClientSecret.objects.filter(client=client)
    assert row.prefix == secret[:12]
    assert secret not in row.hash and len(row.hash) == 64
    stored = json.dumps(list(ClientSecret.objects.values()), default=str)
    assert secret not in stored and secret[12:] not in stored
    # Not in cookies (messages), the session, the history, nor any later page.
    assert secret not in str(response.cookies)
    assert secret not in json.dumps(admin_client.session.load(), default=str)
    assert not LogEntry.objects.filter(change_message__contains=secret).exists()
    for url in (CHANGELIST, change_url(client), "/admin/", change_url(client, "history")):
        later = admin_client.get(url)
        assert later.status_code == 200
        assert_no_secret_material(later.content, [secret])


def test_add_client_with_an_empty_id_generates_one(admin_client, http):
    secret = revealed(admin_client.post(ADD, form_data(client_id="  ")))
    client = Client.objects.get()
    assert re.fullmatch(r"[a-z0-9]{24}", client.client_id)
    assert token_status(http, client.client_id, secret) == 200


def test_add_client_posted_twice_makes_one_client(admin_client):
    data = form_data(client_id="billing-backend")
    revealed(admin_client.post(ADD, data))
    again = admin_client.post(ADD, data)  # reload of the reveal page resubmits the form
    assert again.status_code == 200
    assert not SECRET.search(again.content)
    assert b"already exists" in again.content
    assert (Client.objects.count(), ClientSecret.objects.count()) == (1, 1)


def test_add_client_with_tenants_roles_and_owner(admin_client, admin_user, http):
    acme = Tenant.objects.create(slug="acme", name="Acme")
    reader = Role.objects.create(name="reader", tenant=acme)
    admin_role = Role.objects.create(name="admin")
    response = admin_client.post(ADD, form_data(
        client_id="svc", tenants=[acme.pk], roles=[reader.pk, admin_role.pk], user=admin_user.pk,
        token_endpoint_auth_method="client_secret_post", grant_types=[],
    ))
    secret = revealed(response)
    assert b"--data-urlencode" in response.content  # the curl example fits the auth method
    client = Client.objects.get(client_id="svc")
    assert list(client.tenants.all()) == [acme]
    assert set(client.roles.all()) == {reader, admin_role}
    assert (client.user, client.token_endpoint_auth_method, client.grant_types) == (
        admin_user, "client_secret_post", []
    )
    assert (Tenant.objects.count(), Role.objects.count()) == (1, 2)
    response = post_token(http, {"grant_type": "client_credentials", "client_id": "svc", "client_secret": secret})
    assert_oauth_error(response, 400, "unauthorized_client")


BAD_INPUTS = [
    ("allowed_ips", "10.0.0.0/33", "Not an IP address or CIDR range: 10.0.0.0/33"),
    ("allowed_ips", "10.0.0.0/8\nexample.com", "Not an IP address or CIDR range: example.com"),
    ("access_token_ttl", "ten minutes", "Not a duration: ten minutes"),
    ("access_token_ttl", "0", "Not a duration: 0"),
    ("access_token_ttl", "-5m", "Not a duration: -5m"),
    ("allowed_scopes", 'orders:read bad"scope', "Not a scope: bad&quot;scope"),
    ("default_scopes", "admin", "Default scopes must also be allowed scopes; not allowed: admin."),
    ("audiences", "", None),  # valid: the control case
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_INPUTS)
def test_add_client_refuses_invalid_input_and_saves_nothing(admin_client, field, value, message):
    response = admin_client.post(ADD, form_data(client_id="svc", **{field: value}))
    if message is None:
        revealed(response)
        return
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["adminform"].form.errors.keys() == {field}
    assert not SECRET.search(response.content)
    assert (Client.objects.count(), ClientSecret.objects.count()) == (0, 0)


@pytest.mark.parametrize("client_id", ["has space", "tab\there", "ünïcode"])
def test_add_client_refuses_an_impossible_client_id(admin_client, client_id):
    response = admin_client.post(ADD, form_data(client_id=client_id))
    assert response.status_code == 200
    assert "client_id" in response.context["adminform"].form.errors
    assert Client.objects.count() == 0


# --- the client page -----------------------------------------------------------------------------


def test_client_page_shows_friendly_fields_and_no_secret(admin_client, make_client):
    client, secret = make_client(
        client_id="svc", allowed_scopes=["a", "b"], allowed_ips=["10.0.0.0/8", "192.0.2.7"], access_token_ttl=3600,
    )
    secret_add(client=client, expires=timezone.now() + timedelta(days=1))

    response = admin_client.get(change_url(client))

    assert response.status_code == 200
    html = response.content.decode()
    assert ">\na b</textarea>" in html
    assert ">\n10.0.0.0/8\n192.0.2.7</textarea>" in html
    assert 'value="1h"' in html
    for help_text in ("Empty: any address.", "Empty: the server default.", "Empty: all allowed scopes."):
        assert help_text in html
    for button in ("Reset secret", "Add rotation secret", "Revoke a secret", "Disable"):
        assert f">{button}</a>" in html
    # The inline lists secrets by prefix, read-only, with no hash.
    for row in ClientSecret.objects.filter(client=client):
        assert row.prefix in html
    inline = _between(html, 'id="secrets-group"', "</fieldset>")
    assert "hash" not in inline and 'type="text"' not in inline and "<textarea" not in inline
    assert inline.count(">live<") == 2 and ">never<" in inline and ">Revoke…</a>" in inline
    assert_no_secret_material(response.content, [secret])


def _between(html: str, start: str, end: str) -> str:
    head = html.index(start)
    return html[head:html.index(end, head)]


def test_client_page_saves_through_the_services(admin_client, make_client, http):
    client, secret = make_client(client_id="svc", allowed_scopes=["a"])
    acme = Tenant.objects.create(slug="acme")

    response = admin_client.post(change_url(client), form_data(
        name="renamed", allowed_scopes="a\nb  c", default_scopes="b", access_token_ttl="90s",
        allowed_ips="127.0.0.1", tenants=[acme.pk], client_id="ignored-because-read-only",
    ))

    assert response.status_code == 302, response.content[:3000]
    client.refresh_from_db()
    assert (client.client_id, client.name, client.allowed_scopes, client.default_scopes) == (
        "svc", "renamed", ["a", "b", "c"], ["b"]
    )
    assert (client.access_token_ttl, client.allowed_ips, list(client.tenants.all())) == (90, ["127.0.0.1"], [acme])
    token = post_token(http, {"grant_type": "client_credentials"}, authorization=basic("svc", secret))
    assert token.status_code == 200
    assert json.loads(token.content)["scope"] == "b"
    assert json.loads(token.content)["expires_in"] == 90
    # Emptying the TTL returns the client to the server default.
    admin_client.post(change_url(client), form_data(allowed_scopes="a b c", access_token_ttl=""))
    client.refresh_from_db()
    assert client.access_token_ttl is None


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, v, m in BAD_INPUTS if m])
def test_client_page_refuses_invalid_input_and_changes_nothing(admin_client, make_client, field, value):
    client, _ = make_client(client_id="svc", allowed_scopes=["orders:read"], allowed_ips=["10.0.0.0/8"])
    before = Client.objects.values().get(pk=client.pk)

    response = admin_client.post(change_url(client), form_data(name="changed", **{field: value}))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors.keys() == {field}
    assert Client.objects.values().get(pk=client.pk) == before


# --- secret actions -----------------------------------------------------------------------------------


def test_reset_secret_shows_a_new_secret_once_and_the_old_stops(admin_client, make_client, http):
    client, old = make_client(client_id="svc")
    secret_add(client=client)

    page = admin_client.get(change_url(client, "reset-secret"))
    assert page.status_code == 200
    assert b"stop working" in page.content
    assert_no_secret_material(page.content, [old])

    data = {"seen": seen(client)}
    new = revealed(admin_client.post(change_url(client, "reset-secret"), data))

    assert new != old
    assert token_status(http, "svc", old) == 401
    assert token_status(http, "svc", new) == 200
    assert ClientSecret.objects.filter(client=client).live(timezone.now()).count() == 1
    # Posting the same form again (reload, back button) does nothing and shows nothing.
    again = admin_client.post(change_url(client, "reset-secret"), data)
    assert again.status_code == 200
    assert b"changed since this page was shown" in again.content
    assert not SECRET.search(again.content)
    assert token_status(http, "svc", new) == 200
    assert LogEntry.objects.filter(object_id=str(client.pk), change_message__contains="Reset").count() == 1


def test_add_rotation_secret_keeps_the_old_one_working(admin_client, make_client, http):
    client, old = make_client(client_id="svc")

    new = revealed(admin_client.post(change_url(client, "add-secret"), {"seen": seen(client)}))

    assert token_status(http, "svc", old) == 200
    assert token_status(http, "svc", new) == 200
    assert ClientSecret.objects.filter(client=client, expires__isnull=False).count() == 0


def test_add_rotation_secret_can_expire_the_old_ones(admin_client, make_client, http):
    client, old = make_client(client_id="svc")
    before = timezone.now()

    response = admin_client.post(
        change_url(client, "add-secret"), {"seen": seen(client), "old_secrets_expire_in": "1h", "expires_in": "7d"}
    )

    new = revealed(response)
    old_row = ClientSecret.objects.get(client=client, prefix=old[:12])
    new_row = ClientSecret.objects.get(client=client, prefix=new[:12])
    assert timedelta(minutes=59) < old_row.expires - before < timedelta(minutes=61)
    assert timedelta(days=6, hours=23) < new_row.expires - before < timedelta(days=7, hours=1)
    assert token_status(http, "svc", old) == 200  # until the hour has passed
    ClientSecret.objects.filter(pk=old_row.pk).update(expires=timezone.now())
    assert token_status(http, "svc", old) == 401
    assert token_status(http, "svc", new) == 200


def test_add_rotation_secret_refuses_a_bad_duration(admin_client, make_client):
    client, _ = make_client(client_id="svc")
    data = {"seen": seen(client), "old_secrets_expire_in": "soon"}
    response = admin_client.post(change_url(client, "add-secret"), data)
    assert response.status_code == 200
    assert b"Not a duration: soon" in response.content
    assert ClientSecret.objects.filter(client=client).count() == 1


def test_revoke_secret_by_prefix(admin_client, make_client, http):
    client, old = make_client(client_id="svc")
    new = secret_add(client=client).secret
    prefix = old[:12]

    page = admin_client.get(change_url(client, "revoke-secret") + f"?prefix={prefix}")
    assert page.status_code == 200
    assert f'value="{prefix}"'.encode() in page.content and b"checked" in page.content
    assert_no_secret_material(page.content, [old, new])

    response = admin_client.post(change_url(client, "revoke-secret"), {"secret_prefix": prefix}, follow=True)

    assert response.redirect_chain == [(change_url(client), 302)]
    assert f"Secret {prefix}… revoked".encode() in response.content
    assert token_status(http, "svc", old) == 401
    assert token_status(http, "svc", new) == 200
    # A prefix that is no longer live is refused.
    again = admin_client.post(change_url(client, "revoke-secret"), {"secret_prefix": prefix})
    assert again.status_code == 200 and "secret_prefix" in again.context["form"].errors


def test_revoking_the_last_secret_warns(admin_client, make_client):
    client, _ = make_client(client_id="svc")
    page = admin_client.get(change_url(client, "revoke-secret"))
    assert b"only live secret" in page.content


def test_disable_and_enable_from_the_client_page(admin_client, make_client, http):
    client, secret = make_client(client_id="svc")

    assert b"no new tokens" in admin_client.get(change_url(client, "disable")).content
    response = admin_client.post(change_url(client, "disable"))

    assert response.status_code == 302 and response["Location"] == change_url(client)
    client.refresh_from_db()
    assert client.enabled is False
    assert token_status(http, "svc", secret) == 401
    assert b">Enable</a>" in admin_client.get(change_url(client)).content
    admin_client.post(change_url(client, "enable"))
    client.refresh_from_db()
    assert client.enabled is True
    assert token_status(http, "svc", secret) == 200


def test_bulk_enable_and_disable(admin_client, make_client, http):
    one, secret = make_client(client_id="one")
    two, _ = make_client(client_id="two", enabled=False)

    response = admin_client.post(
        CHANGELIST, {"action": "disable_clients", "_selected_action": [one.pk, two.pk]}, follow=True
    )
    assert b"1 client(s) disabled: one." in response.content
    assert set(Client.objects.values_list("enabled", flat=True)) == {False}
    assert token_status(http, "one", secret) == 401

    admin_client.post(CHANGELIST, {"action": "enable_clients", "_selected_action": [one.pk, two.pk]})
    assert set(Client.objects.values_list("enabled", flat=True)) == {True}
    assert token_status(http, "one", secret) == 200


def test_delete_client_through_the_admin(admin_client, make_client, http):
    client, secret = make_client(client_id="svc")
    response = admin_client.post(change_url(client, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert (Client.objects.count(), ClientSecret.objects.count()) == (0, 0)
    assert token_status(http, "svc", secret) == 401


@pytest.mark.parametrize("suffix", ["reset-secret", "add-secret", "revoke-secret", "disable", "enable"])
def test_actions_need_staff_with_change_permission(make_client, django_user_model, suffix):
    client, _ = make_client(client_id="svc")
    anonymous = HttpClient()
    response = anonymous.post(change_url(client, suffix), {"seen": "0"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(*_perms("view_client"))
    browser = HttpClient()
    browser.force_login(viewer)
    assert browser.post(change_url(client, suffix), {"seen": seen(client)}).status_code == 403
    assert ClientSecret.objects.count() == 1
    assert browser.get(f"/admin/clients/client/{client.pk + 100}/{suffix}/").status_code == 404


def _perms(*codenames: str) -> list[Any]:
    from django.contrib.auth.models import Permission

    return list(Permission.objects.filter(codename__in=codenames))


# --- tenants, roles, signing keys ----------------------------------------------------------------------


def test_tenant_and_role_pages(admin_client, make_client):
    make_client(client_id="svc", tenants=["acme"], roles=["acme/reader", "auditor"])
    Tenant.objects.create(slug="globex", name="Globex Corp")

    tenants = admin_client.get("/admin/clients/tenant/?q=globex")
    assert tenants.status_code == 200
    assert [t.slug for t in tenants.context["cl"].result_list] == ["globex"]
    assert "Globex Corp" in tenants.content.decode()
    roles = admin_client.get("/admin/clients/role/")
    html = roles.content.decode()
    assert "acme/reader" in html and "auditor" in html
    acme = Tenant.objects.get(slug="acme")
    filtered = admin_client.get(f"/admin/clients/role/?tenant__id__exact={acme.pk}")
    assert [r.claim_value for r in filtered.context["cl"].result_list] == ["acme/reader"]
    added = admin_client.post("/admin/clients/tenant/add/", {"name": "Initech", "slug": "initech"})
    assert added.status_code == 302 and Tenant.objects.filter(slug="initech").exists()
    bad = admin_client.post("/admin/clients/role/add/", {"name": "has space", "tenant": ""})
    assert bad.status_code == 200 and "name" in bad.context["adminform"].form.errors


def listed_keys(admin_client: HttpClient, state: str) -> list[str]:
    return [key.kid for key in admin_client.get(f"/admin/tokens/signingkey/?state={state}").context["cl"].result_list]


def test_signing_keys_page_lists_keys_and_rotates(admin_client, http):
    first = keyring().signer.kid

    page = admin_client.get("/admin/tokens/signingkey/")
    assert page.status_code == 200
    html = page.content.decode()
    assert first in html and "signing" in html and ">Rotate signing key</a>" in html
    for header in ("Kid", "Algorithm", "State", "Created", "Rotated out", "Published until"):
        assert f">{header}<" in html, header
    detail = admin_client.get(f"/admin/tokens/signingkey/{SigningKey.objects.get().pk}/change/")
    assert b"&quot;kty&quot;: &quot;EC&quot;" in detail.content and b"PRIVATE KEY" not in detail.content

    assert b"Rotate now" in admin_client.get("/admin/tokens/signingkey/rotate/").content
    response = admin_client.post("/admin/tokens/signingkey/rotate/", follow=True)

    assert response.redirect_chain == [("/admin/tokens/signingkey/", 302)]
    signer = SigningKey.objects.get(signing=True)
    assert signer.kid != first
    assert SigningKey.objects.get(kid=first).state(timezone.now()) == "published"
    assert f"Key {signer.kid}" in response.content.decode()
    states = {k.kid: k for k in response.context["cl"].result_list}
    assert set(states) == {first, signer.kid}
    assert listed_keys(admin_client, "published") == [first]
    assert keyring().signer.kid == signer.kid


def test_signing_keys_prune_deletes_retired_keys(admin_client):
    old = key_rotate(now=timezone.now() - timedelta(days=30))
    key_rotate()
    SigningKey.objects.filter(pk=old.pk).update(published_until=timezone.now() - timedelta(days=1))
    assert listed_keys(admin_client, "retired") == [old.kid]
    admin_client.post("/admin/tokens/signingkey/prune/")
    assert not SigningKey.objects.filter(pk=old.pk).exists()
    assert SigningKey.objects.count() == 1


def test_signing_keys_cannot_be_added_or_edited(admin_client):
    keyring()
    key = SigningKey.objects.get()
    assert admin_client.get("/admin/tokens/signingkey/add/").status_code == 403
    before = SigningKey.objects.values().get()
    admin_client.post(f"/admin/tokens/signingkey/{key.pk}/change/", {"kid": "x"})
    assert SigningKey.objects.values().get() == before


# --- what operators must not see, and what must work without DEBUG --------------------------------------------


@pytest.mark.parametrize("path", [
    "/admin/oauth2_provider/",
    "/admin/oauth2_provider/application/",
    "/admin/oauth2_provider/accesstoken/",
    "/admin/oauth2_provider/refreshtoken/",
    "/admin/oauth2_provider/grant/",
    "/admin/oauth2_provider/idtoken/",
])
def test_django_oauth_toolkit_pages_are_not_shown(admin_client, path):
    assert admin_client.get(path).status_code == 404


def test_admin_index_lists_only_our_apps(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "Client registry" in html and "Signing keys" in html
    assert "oauth2_provider" not in html and "Django OAuth Toolkit" not in html


def test_static_files_are_served_with_debug_off(settings, client):
    assert settings.DEBUG is False
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"/*")


# --- private_key_jwt keys ------------------------------------------------------------------------


def test_a_key_client_is_created_from_a_pasted_pem_and_its_keys_are_shown(admin_client, http):
    from tests.workload_issuer import client_assertion_claims, new_key

    signing = new_key("ES256")
    response = admin_client.post(ADD, form_data(
        client_id="keyed", token_endpoint_auth_method="private_key_jwt", jwks=signing.public_pem().decode(),
    ))
    assert response.status_code == 302, response.content[:3000]  # no reveal page: there is no secret
    client = Client.objects.get(client_id="keyed")
    assert not client.secrets.exists()
    (registered,) = client.jwks["keys"]
    assert registered["kid"] == signing.public_jwk()["kid"]  # the thumbprint names a pasted PEM key
    page = admin_client.get(f"/admin/clients/client/{client.pk}/change/").content.decode()
    assert registered["kid"] in page and "EC P-256" in page
    # The key it shows is the one that works.
    token = signing.mint(client_assertion_claims("keyed", audience="http://testserver"))
    response = post_token(http, {"grant_type": "client_credentials",
                                 "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                                 "client_assertion": token})
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("pasted", "message"),
    [
        ("private-pem", "That is a private key"),
        ("private-jwk", "private or symmetric key"),
        ("not json", "Paste a JWK Set (JSON) or PEM public keys."),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "not a public key or certificate"),
    ],
)
def test_the_admin_refuses_private_and_malformed_keys(admin_client, pasted, message):
    from tests.workload_issuer import new_key

    signing = new_key("RS256")
    text = {"private-pem": signing.private_pem().decode(),
            "private-jwk": json.dumps({"keys": [signing.private_jwk()]})}.get(pasted, pasted)
    response = admin_client.post(ADD, form_data(token_endpoint_auth_method="private_key_jwt", jwks=text))
    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors["jwks"])
    assert not Client.objects.exists()
    if pasted.startswith("private"):  # never shown back on the page that refuses it
        page = response.content.decode()
        assert "PRIVATE KEY" not in page and signing.private_jwk()["d"] not in page
