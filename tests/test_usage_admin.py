"""The admin's usage pages: the client page's 7-day chart and the registry dashboard, drawn
from the counts token requests produced (``clients.usage_report``)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from clients import usage
from clients.models import Client, ClientSecret, ClientUsage
from tests.conftest import basic, post_token

GRANT = {"grant_type": "client_credentials"}
WRONG = "ascs_" + "A" * 54

pytestmark = pytest.mark.django_db


def bars(html: str, chart_id: str) -> list[tuple[int, int]]:
    """(tokens issued, failed) of every drawn bar of the chart ``chart_id``."""
    figure = html[html.index(f'id="{chart_id}"'):]
    figure = figure[: figure.index("</figure>")]
    return [(int(i), int(f)) for i, f in re.findall(r'data-tokens-issued="(\d+)" data-failed="(\d+)"', figure)]


def test_the_client_page_charts_the_tokens_and_failures_of_the_last_7_days(make_client, http, admin_client):
    client, secret = make_client(client_id="billing")
    for _ in range(4):
        assert post_token(http, GRANT, authorization=basic("billing", secret)).status_code == 200
    assert post_token(http, GRANT, authorization=basic("billing", WRONG)).status_code == 401
    usage.flush(force=True)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    ClientUsage.objects.create(client=client, hour=hour - timedelta(days=2), tokens_issued=7)
    ClientUsage.objects.create(client=client, hour=hour - timedelta(days=9), tokens_issued=100)  # too old

    html = admin_client.get(f"/admin/clients/client/{client.pk}/change/").content.decode()
    assert sorted(bars(html, "client-usage")) == [(4, 1), (7, 0)]
    assert re.search(r"<strong>11</strong> tokens issued,\s+<strong>1</strong> failed authentication\s+in", html)
    assert 'href="/admin/clients/client/dashboard/"' in html


def test_a_client_without_use_gets_an_empty_chart(make_client, admin_client):
    client, _ = make_client(client_id="quiet")
    html = admin_client.get(f"/admin/clients/client/{client.pk}/change/").content.decode()
    assert bars(html, "client-usage") == []
    assert re.search(r"<strong>0</strong> tokens issued,\s+<strong>0</strong> failed authentications\s+in", html)


def test_the_dashboard(make_client, http, admin_client):
    busy, busy_secret = make_client(client_id="busy")
    calm, calm_secret = make_client(client_id="calm")
    old, _ = make_client(client_id="forgotten")
    Client.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=60))
    for _ in range(3):
        post_token(http, GRANT, authorization=basic("busy", busy_secret))
    post_token(http, GRANT, authorization=basic("calm", calm_secret))
    for _ in range(2):
        post_token(http, GRANT, authorization=basic("calm", WRONG))
    usage.flush(force=True)
    ClientSecret.objects.filter(client=calm).update(expires=timezone.now() + timedelta(days=3))

    response = admin_client.get("/admin/clients/client/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert bars(html, "registry-usage") == [(4, 2)]

    def rows(table_id: str) -> list[tuple[str, str]]:
        table = html[html.index(f'id="{table_id}"'):]
        table = table[: table.index("</table>")]
        return re.findall(r">([\w-]+)</a></td>\s*<td>[^<]*</td><td>([^<]*)</td>", table)

    assert rows("dashboard-busiest") == [("busy", "3"), ("calm", "1")]
    assert rows("dashboard-failing") == [("calm", "2")]
    assert rows("dashboard-unused") == [("forgotten", "never")]
    assert [client for client, _ in rows("dashboard-expiring")] == ["calm"]
    assert "Usage dashboard" in admin_client.get("/admin/clients/client/").content.decode()


def test_the_dashboard_is_for_staff_only(http):
    response = http.get("/admin/clients/client/dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
