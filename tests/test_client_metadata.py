"""Each client setting is declared once (``clients.metadata``) and every face derives from it:
the management API, the admin form, ``createclient``, the audit trail and the token path's
snapshot.  These tests fail when a face stops deriving, or when a declaration drifts
from the model."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client as HttpClient
from joserfc.jwk import ECKey

from clients import metadata, registry
from clients.management.commands.createclient import Command as CreateClient
from clients.models import AuditEvent, Client, Role, Tenant, TrustedIssuer
from clients.secrets import secret_prefix
from clients.serializers import ClientInputSerializer, ClientSerializer, ClientUpdateSerializer
from clients.services import UPDATABLE_FIELDS
from tests.conftest import basic, post_token

SETTINGS = [pytest.param(setting, id=setting.name) for setting in metadata.SETTINGS]


@pytest.fixture(autouse=True)
def _sample_issuer(request: pytest.FixtureRequest) -> None:
    """The trusted issuer SAMPLE's federated identity names (for the tests that use the database)."""
    if "db" in request.fixturenames or "make_client" in request.fixturenames or "admin_client" in request.fixturenames:
        request.getfixturevalue("db")
        TrustedIssuer.objects.create(name="sample-cluster", issuer="https://cluster.example.com")

# A value for each setting that differs from its create default, as the model holds it.
SAMPLE: dict[str, Any] = {
    "name": "Billing backend",
    "enabled": False,
    "grant_types": [],
    "allowed_scopes": ["invoices:read", "invoices:write"],
    "default_scopes": ["invoices:read"],
    "audiences": ["https://api.example.com/"],
    "access_token_ttl": 600,
    "dpop_bound_access_tokens": True,
    "token_endpoint_auth_method": "client_secret_post",
    "jwks": {"keys": [{**ECKey.generate_key("P-256").as_dict(private=False), "kid": "sample-1"}]},
    "jwks_uri": "",
    "token_endpoint_auth_signing_alg": "ES256",
    "federated_identities": [
        {"trusted_issuer": "sample-cluster", "subject": "system:serviceaccount:billing:*",
         "claims": {"/kubernetes.io/namespace": "billing"}},
    ],
    "allowed_ips": ["10.0.0.0/8"],
    "tls_client_certificate_bound_access_tokens": True,
    "tls_client_auth_subject_dn": "CN=billing,O=Example Corp,C=DE",
    "tls_client_auth_san_dns": "billing.example.com",
    "tls_client_auth_san_uri": "spiffe://example.com/billing",
    "tls_client_auth_san_ip": "2001:db8::7",
    "tls_client_auth_san_email": "billing@example.com",
}
# jwks and jwks_uri exclude each other: the second sample sets the one the first leaves unset.
SAMPLE_URI: dict[str, Any] = {**SAMPLE, "jwks": None, "jwks_uri": "https://keys.example.com/jwks.json"}
DEFAULTS_KEPT = {"jwks_uri"}  # settings SAMPLE leaves at their default (SAMPLE_URI sets them)


def test_every_setting_is_a_model_field_with_a_sample() -> None:
    assert set(SAMPLE) == set(metadata.BY_NAME)
    assert {name for name in SAMPLE if SAMPLE[name] == SAMPLE_URI[name]} == set(SAMPLE) - {"jwks", *DEFAULTS_KEPT}
    for setting in metadata.SETTINGS:
        Client._meta.get_field(setting.name)  # raises for a declaration without a column
    assert len(metadata.BY_API_NAME) == len(metadata.SETTINGS)  # API names are unique


@pytest.mark.parametrize("setting", SETTINGS)
def test_every_setting_is_in_the_api_both_ways(setting: metadata.Setting) -> None:
    for serializer in (ClientInputSerializer(), ClientUpdateSerializer(context={"client": None})):
        field = serializer.fields[setting.api_name]
        assert not field.read_only and not field.required
    assert ClientSerializer().fields[setting.api_name].source == setting.name
    assert setting.name in UPDATABLE_FIELDS


@pytest.mark.parametrize("setting", SETTINGS)
def test_every_setting_is_on_the_admin_page_with_its_label(setting: metadata.Setting, admin_client: HttpClient) -> None:
    form = admin_client.get("/admin/clients/client/add/").context["adminform"].form
    assert form.fields[setting.name].label == setting.label
    assert form.fields[setting.name].help_text == setting.help


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.values[0].cli])
def test_createclient_has_a_flag_for_every_setting_that_declares_one(setting: Any) -> None:
    declared: metadata.Setting = setting
    parser = CreateClient().create_parser("manage.py", "createclient")
    assert declared.cli in parser._option_string_actions


@pytest.mark.parametrize("sample", [SAMPLE, SAMPLE_URI], ids=["jwks", "jwks_uri"])
def test_a_setting_set_through_the_api_reaches_the_admin_the_audit_trail_and_the_token_path(
    make_client, admin_client: HttpClient, http: HttpClient, sample: dict[str, Any]
) -> None:
    ops, ops_secret = make_client(client_id="ops-bot", allowed_scopes=["clients:write"])
    token = post_token(http, {"grant_type": "client_credentials"}, authorization=basic("ops-bot", ops_secret))
    client, secret = make_client(name="before")
    before = {name: getattr(client, name) for name in sample}
    # The API's own spelling of each sample value (scope strings, null for unset, ...).
    fields = ClientSerializer().fields
    api_body = {s.api_name: fields[s.api_name].to_representation(sample[s.name]) for s in metadata.SETTINGS}
    response = http.patch(
        f"/client/{client.client_id}", api_body, content_type="application/json",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert response.status_code == 200, response.content
    client.refresh_from_db()
    assert {name: getattr(client, name) for name in sample} == sample
    # The audit trail names every setting that changed.
    changed = AuditEvent.objects.filter(action="client.updated").get().changes
    assert set(changed) == {name for name in sample if sample[name] != before[name]}
    # The admin page shows each value.
    form = admin_client.get(f"/admin/clients/client/{client.pk}/change/").context["adminform"].form
    for name, value in sample.items():
        assert form[name].value() in (value, form.fields[name].prepare_value(value)), name
    # The token path sees every setting it reads.
    record = registry.candidates([client.client_id], secret_prefix(secret))[0].client
    for setting in metadata.token_path_settings():
        expected = sample[setting.name]
        assert getattr(record, setting.name) == (tuple(expected) if isinstance(expected, list) else expected)
    with pytest.raises(AttributeError):
        record.name  # noqa: B018  (not on the token path: not in the snapshot)


def test_createclient_sets_every_setting_with_a_flag(db: None, tmp_path: Any) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(SAMPLE["jwks"]))
    args = {
        "--scope": ["invoices:read", "invoices:write"], "--default-scope": ["invoices:read"],
        "--audience": ["https://api.example.com/"], "--ttl": ["10m"], "--auth-method": ["client_secret_post"],
        "--jwks-file": [str(jwks_file)], "--signing-alg": ["ES256"], "--allow-ip": ["10.0.0.0/8"],
        "--dpop-bound": [None], "--certificate-bound": [None],
        "--tls-subject-dn": [SAMPLE["tls_client_auth_subject_dn"]],
        "--tls-san-dns": [SAMPLE["tls_client_auth_san_dns"]], "--tls-san-uri": [SAMPLE["tls_client_auth_san_uri"]],
        "--tls-san-ip": [SAMPLE["tls_client_auth_san_ip"]], "--tls-san-email": [SAMPLE["tls_client_auth_san_email"]],
        "--federated-identity": [json.dumps(SAMPLE["federated_identities"][0])],
    }
    assert set(args) | {"--jwks-uri"} == {s.cli for s in metadata.SETTINGS if s.cli}
    for client_id, sample, extra in [
        ("cli-billing", SAMPLE, {}),
        ("cli-billing-uri", SAMPLE_URI, {"--jwks-file": [], "--jwks-uri": [SAMPLE_URI["jwks_uri"]]}),
    ]:
        flags = {**args, **extra}
        argv = [item for flag, values in flags.items() for value in values
                for item in ((flag,) if value is None else (flag, value))]
        call_command("createclient", "Billing backend", "--client-id", client_id, *argv, stdout=io.StringIO())
        client = Client.objects.get(client_id=client_id)
        for setting in metadata.SETTINGS:
            if setting.cli:
                assert getattr(client, setting.name) == sample[setting.name], setting.name


@pytest.mark.parametrize(
    ("path", "data", "action"),
    [
        ("/admin/clients/tenant/add/", {"name": "Initech", "slug": "initech"}, ("tenant.created", "initech")),
        ("/admin/clients/role/add/", {"name": "reader", "tenant": ""}, ("role.created", "reader")),
    ],
)
def test_admin_creates_tenants_and_roles_through_the_services(admin_client, path, data, action) -> None:
    response = admin_client.post(path, data)
    assert response.status_code == 302, response.content
    assert [(e.actor, e.action, e.target) for e in AuditEvent.objects.all()] == [("user:admin", *action)]


def test_admin_updates_and_deletes_tenants_and_roles_through_the_services(admin_client) -> None:
    tenant = Tenant.objects.create(slug="acme", name="Acme")
    role = Role.objects.create(name="reader", tenant=tenant)
    assert admin_client.post(f"/admin/clients/tenant/{tenant.pk}/change/", {"name": "Acme Corp", "slug": "acme"}) \
        .status_code == 302
    assert admin_client.post(f"/admin/clients/role/{role.pk}/change/", {"name": "viewer", "tenant": tenant.pk}) \
        .status_code == 302
    assert admin_client.post(f"/admin/clients/role/{role.pk}/delete/", {"post": "yes"}).status_code == 302
    assert admin_client.post(f"/admin/clients/tenant/{tenant.pk}/delete/", {"post": "yes"}).status_code == 302
    events = [(e.actor, e.action, e.target, e.changes) for e in AuditEvent.objects.order_by("id")]
    assert events == [
        ("user:admin", "tenant.updated", "acme", {"name": "Acme Corp"}),
        ("user:admin", "role.updated", "acme/viewer", {"name": "viewer"}),
        ("user:admin", "role.deleted", "acme/viewer", {}),
        ("user:admin", "tenant.deleted", "acme", {}),
    ]
    assert not Tenant.objects.exists() and not Role.objects.exists()
