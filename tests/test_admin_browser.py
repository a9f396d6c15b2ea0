"""The admin in a real browser: headless Chromium driven by Playwright.

An operator logs in, creates a client, reads its secret off the page, gets a token
with it over HTTP, resets the secret, and sees the old one refused and the new one
accepted.  Debian's ``chromium`` is used; Playwright never downloads a browser.
Screenshots of every page visited go to the test's tmp dir and ``/tmp/admin-shots/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
SHOTS = Path("/tmp/admin-shots")
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium); Playwright must not download one",
)


class Screens:
    """Takes a full-page screenshot per admin page, named by page, into both folders."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page, self.folder, self.taken = page, folder, []  # type: list[str]
        SHOTS.mkdir(parents=True, exist_ok=True)

    def shoot(self, name: str) -> None:
        number = len(self.taken) + 1
        path = self.folder / f"{number:02}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        shutil.copy(path, SHOTS / path.name)
        self.taken.append(path.name)


def loaded(page: Any) -> None:
    """Wait until the admin page after a navigation is fully parsed (its footer is in the DOM):
    a click returns once navigation starts, and content() read earlier may hold half a page."""
    page.wait_for_load_state("domcontentloaded")
    page.wait_for_selector("#footer", state="attached")


@pytest.fixture
def operator(transactional_db: None, django_user_model: Any) -> str:
    """A superuser, made before the browser starts: Playwright's event loop forbids the ORM."""
    django_user_model.objects.create_superuser("operator", "operator@example.com", PASSWORD)
    return "operator"


@pytest.fixture
def browser_page(live_server: Any, operator: str) -> Iterator[tuple[Any, list[str]]]:
    """A fresh page in headless Chromium, with every failed request and script error recorded."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15000)
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on(
            "response",
            lambda response: problems.append(f"{response.status} {response.url}") if response.status >= 400 else None,
        )
        try:
            yield page, problems
        finally:
            context.close()
            browser.close()


def request_token(base_url: str, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        f"{base_url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=30
    )


def test_operator_creates_a_client_and_resets_its_secret(
    live_server: Any, operator: str, browser_page: Any, tmp_path: Path
) -> None:
    page, problems = browser_page
    screens = Screens(page, tmp_path)
    static_loaded: list[str] = []
    page.on("response", lambda r: static_loaded.append(r.url) if "/static/admin/" in r.url and r.ok else None)
    base = live_server.url

    # Log in.
    page.goto(f"{base}/admin/")
    assert "/admin/login/" in page.url
    screens.shoot("login")
    page.fill("#id_username", operator)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    loaded(page)
    page.wait_for_url(f"{base}/admin/")
    assert page.get_by_role("link", name="Clients", exact=True).is_visible()
    assert page.get_by_role("link", name="Signing keys", exact=True).is_visible()
    screens.shoot("index")

    # Create a client through the form.
    page.get_by_role("link", name="Clients", exact=True).click()
    loaded(page)
    screens.shoot("clients-empty")
    page.get_by_role("link", name="Add client").click()
    loaded(page)
    page.fill("#id_client_id", "browser-e2e")
    page.fill("#id_name", "Browser end-to-end test")
    page.fill("#id_allowed_scopes", "orders:read\norders:write")
    page.fill("#id_access_token_ttl", "10m")
    page.fill("#id_allowed_ips", "127.0.0.0/8\n::1")
    screens.shoot("client-add")
    page.locator("input[name=_save]").click()
    loaded(page)

    # The secret, shown once, copied with the button.
    page.wait_for_selector("#client-secret")
    assert "not be shown again" in page.content()
    first = page.input_value("#client-secret")
    assert first.startswith("ascs_")
    page.get_by_role("button", name="Copy to clipboard").click()
    page.wait_for_function("document.getElementById('copy-status').textContent.length > 0")
    assert page.text_content("#copy-status") == "Copied."
    assert page.evaluate("navigator.clipboard.readText()") == first
    screens.shoot("secret-revealed-on-create")

    response = request_token(base, "browser-e2e", first)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "orders:read orders:write"
    assert response.json()["expires_in"] == 600

    # Going back shows the form again, never the secret.
    page.go_back()
    loaded(page)
    assert first not in page.content()

    # The changelist and the client page show prefixes only.
    page.goto(f"{base}/admin/clients/client/")
    assert "browser-e2e" in page.content() and first not in page.content()
    screens.shoot("clients-list")
    page.get_by_role("link", name="browser-e2e").click()
    loaded(page)
    assert first not in page.content() and first[:12] in page.content()
    screens.shoot("client-change")

    # The other actions' pages.
    page.get_by_role("link", name="Add rotation secret").click()
    loaded(page)
    screens.shoot("add-rotation-secret")
    page.go_back()
    loaded(page)
    page.get_by_role("link", name="Revoke a secret").click()
    loaded(page)
    screens.shoot("revoke-secret")
    page.go_back()
    loaded(page)

    # Reset the secret.
    page.get_by_role("link", name="Reset secret").click()
    loaded(page)
    screens.shoot("reset-secret-confirm")
    page.get_by_role("button", name="Reset the secret").click()
    loaded(page)
    page.wait_for_selector("#client-secret")
    second = page.input_value("#client-secret")
    assert second.startswith("ascs_") and second != first
    assert first not in page.content()
    screens.shoot("secret-revealed-on-reset")

    refused = request_token(base, "browser-e2e", first)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    accepted = request_token(base, "browser-e2e", second)
    assert accepted.status_code == 200, accepted.text

    page.get_by_role("link", name="I have copied it: back to the client").click()
    loaded(page)
    assert second not in page.content()
    screens.shoot("client-change-after-reset")

    # Edit the client page itself (its read-only secrets inline posts along).
    page.fill("#id_default_scopes", "orders:read")
    page.locator("input[name=_save]").click()
    loaded(page)
    page.wait_for_url(f"{base}/admin/clients/client/")
    assert "was changed successfully" in page.content()
    screens.shoot("clients-list-after-edit")
    narrowed = request_token(base, "browser-e2e", second)
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "orders:read"

    # The signing keys (the token requests made the first one), tenants and roles.
    page.goto(f"{base}/admin/tokens/signingkey/")
    assert "signing" in page.content()
    screens.shoot("signing-keys")
    page.get_by_role("link", name="Rotate signing key").click()
    loaded(page)
    screens.shoot("rotate-signing-key-confirm")
    page.get_by_role("button", name="Rotate now").click()
    loaded(page)
    page.wait_for_url(f"{base}/admin/tokens/signingkey/")
    assert "published" in page.content()
    screens.shoot("signing-keys-after-rotation")
    page.goto(f"{base}/admin/clients/tenant/")
    screens.shoot("tenants")
    page.goto(f"{base}/admin/clients/role/")
    screens.shoot("roles")

    assert problems == []
    assert any(url.endswith("/static/admin/css/base.css") for url in static_loaded), static_loaded
    assert len(screens.taken) >= 10


@pytest.fixture
def used_client(live_server: Any, operator: str, django_user_model: Any) -> int:
    """A client that got 6 tokens and failed 2 authentications, counts written; made before the
    browser starts (Playwright's event loop forbids the ORM). Returns its primary key."""
    from clients import usage
    from clients.services import client_create

    client, issued = client_create(name="Charted service", client_id="charted")
    for _ in range(6):
        assert request_token(live_server.url, "charted", issued.secret).status_code == 200
    for _ in range(2):
        assert request_token(live_server.url, "charted", "ascs_" + "A" * 54).status_code == 401
    usage.flush(force=True)
    return client.pk


def chart_numbers(page: Any, chart_id: str) -> tuple[int, int, int]:
    """(tokens issued, failed authentications, bars drawn) as the page's SVG chart shows them."""
    figure = page.locator(f"#{chart_id}")
    assert figure.is_visible()
    drawn = figure.locator("g[data-hour]")
    issued = sum(int(drawn.nth(i).get_attribute("data-tokens-issued")) for i in range(drawn.count()))
    failed = sum(int(drawn.nth(i).get_attribute("data-failed")) for i in range(drawn.count()))
    # The bars really are drawn: the issued bar of a used hour has a height.
    heights = [float(drawn.nth(i).locator("rect.issued").get_attribute("height")) for i in range(drawn.count())]
    assert all(height > 0 for height in heights)
    return issued, failed, drawn.count()


def test_operator_sees_usage_on_the_client_page_and_the_dashboard(
    live_server: Any, used_client: int, browser_page: Any, tmp_path: Path
) -> None:
    page, problems = browser_page
    screens = Screens(page, tmp_path)
    base = live_server.url
    page.goto(f"{base}/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    loaded(page)

    page.goto(f"{base}/admin/clients/client/{used_client}/change/")
    loaded(page)
    assert chart_numbers(page, "client-usage") == (6, 2, 1)
    assert "6 tokens issued, 2 failed authentications" in " ".join(page.text_content("#client-usage").split())
    screens.shoot("client-usage-chart")

    page.get_by_role("link", name="All clients: the usage dashboard").click()
    loaded(page)
    assert chart_numbers(page, "registry-usage") == (6, 2, 1)
    busiest = page.locator("#dashboard-busiest tbody tr").first
    assert busiest.locator("td").first.text_content() == "charted"
    assert busiest.locator("td").last.text_content() == "6"
    failing = page.locator("#dashboard-failing tbody tr").first
    assert failing.locator("td").last.text_content() == "2"
    screens.shoot("usage-dashboard")
    assert problems == []


def test_choosing_an_mtls_method_ticks_certificate_bound_tokens(live_server: Any, operator: str,
                                                                 browser_page: Any) -> None:
    """RFC 8705 §3 by default for the mTLS methods, as the API and createclient have it; the
    operator's own choice stands."""
    page, problems = browser_page
    base = live_server.url
    page.goto(f"{base}/admin/login/?next=/admin/clients/client/add/")
    page.fill("#id_username", operator)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    loaded(page)
    bound = page.locator("#id_tls_client_certificate_bound_access_tokens")
    assert not bound.is_checked()
    page.select_option("#id_token_endpoint_auth_method", "tls_client_auth")
    assert bound.is_checked()
    page.select_option("#id_token_endpoint_auth_method", "client_secret_basic")
    assert not bound.is_checked()
    page.select_option("#id_token_endpoint_auth_method", "self_signed_tls_client_auth")
    assert bound.is_checked()
    bound.uncheck()
    page.select_option("#id_token_endpoint_auth_method", "tls_client_auth")
    assert not bound.is_checked()  # unticked by hand: left as the operator set it
    assert problems == []
