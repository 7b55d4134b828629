"""The admin's first session in a real browser: sign in, create a domain, create an account with a
wrong password, read the plain-words error and its help link, fix it, see it saved, switch to Spanish.

Screenshots of each main page land in test-artifacts/ (look at them).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from buzon.mailboxes.models import EmailAccount, EmailDomain
from tests.support.browser import new_page, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin(db):
    return get_user_model().objects.create_user("admin", "admin@example.test", "admin-pass", is_staff=True)


def test_domain_then_account_with_wrong_then_right_password(browser_page, admin, dovecot):
    page = browser_page
    sign_in(page, "admin", "admin-pass")
    assert page.url.endswith("/")
    screenshot(page, "01-home")

    # Home > Settings > Email / Notifications > Email Domain
    page.click("#bz-sidebar >> text=Email / Notifications")
    screenshot(page, "02-settings")
    page.click("main >> text=Email Domain")
    page.click("#new-domain")
    page.fill("#id_domain_name", "example.test")
    page.fill("#id_incoming_host", "localhost")
    page.fill("#id_incoming_port", str(dovecot.imap_port))
    page.select_option("#id_incoming_security", "starttls")
    screenshot(page, "03-domain-form")
    page.click("#save")
    page.wait_for_selector("#domain-table >> text=example.test")
    screenshot(page, "04-domain-list")
    assert EmailDomain.objects.filter(domain_name="example.test").exists()

    address = dovecot.add_user(password="right-password")
    page.click("#bz-sidebar >> text=Email Account")
    page.click("#new-account")
    page.fill("#id_email_address", address)
    page.fill("#id_display_name", "Support")
    page.fill("#id_password", "wrong-password")
    page.check("#id_incoming_enabled")
    page.click("#save")
    error = page.locator("[data-error-for=password]")
    error.wait_for()
    text = error.inner_text()
    assert re.search(r"password|log ?in|user name", text, re.I), text
    help_href = error.locator("a").get_attribute("href")
    assert "/help/troubleshooting/" in help_href
    assert page.input_value("#id_password") == ""  # a password is never rendered back
    assert "wrong-password" not in page.content()
    screenshot(page, "05-account-error")
    assert not EmailAccount.objects.filter(email_address=address).exists()

    # The test button runs the same probe without saving.
    page.fill("#id_password", "right-password")
    page.click("#test-connection")
    page.wait_for_selector("#test-results [data-direction=incoming].alert-success")
    screenshot(page, "06-account-test")
    assert not EmailAccount.objects.filter(email_address=address).exists()

    page.click("#save")
    page.wait_for_selector(f"#account-table [data-account='{address}']")
    screenshot(page, "07-account-list")
    account = EmailAccount.objects.get(email_address=address)
    assert account.get_password() == "right-password" and account.incoming_enabled

    # The help page the error linked to explains the failure.
    page.goto(help_href)
    assert page.locator("h1").inner_text()
    screenshot(page, "08-troubleshooting-topic")
    page.goto("/help/troubleshooting/")
    screenshot(page, "08-troubleshooting")

    page.goto(f"/settings/email/accounts/{account.pk}/edit/")
    assert page.input_value("#id_password") == ""
    screenshot(page, "09-account-form")


def test_language_switch_to_spanish_and_back(browser_page, admin):
    page = browser_page
    sign_in(page, "admin", "admin-pass")
    page.goto("/settings/email/accounts/")
    assert page.locator("h1").inner_text() == "Email Account"
    page.click("#bz-language")
    page.click("button[name=language][value=es]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Cuenta de Correo Electrónico"
    assert page.locator("html").get_attribute("lang") == "es"
    crumbs = page.locator(".breadcrumb").inner_text()
    assert "Inicio" in crumbs and "Configuración" in crumbs and "Correo / Notificaciones" in crumbs
    screenshot(page, "10-accounts-es")
    page.goto("/settings/email/accounts/new/")
    assert "Habilitar correos entrantes" in page.content() or "entrante" in page.content().lower()
    screenshot(page, "11-account-form-es")
    page.goto("/settings/stores/")
    assert page.locator("h1").inner_text() == "Tiendas"
    screenshot(page, "13-stores-es")
    page.click("#bz-language")
    page.click("button[name=language][value=en]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Stores"


def test_browser_language_is_the_default(chromium, live_server, admin):
    page = new_page(chromium, live_server.url, locale="es-ES")
    try:
        page.goto("/login/")
        assert page.locator("h1").inner_text() == "Iniciar sesión"
        screenshot(page, "00-login-es")
    finally:
        page.context.close()


def test_provider_hint_follows_the_typed_address(browser_page, admin):
    page = browser_page
    sign_in(page, "admin", "admin-pass")
    page.goto("/settings/email/accounts/new/")
    assert page.locator("#preset-hint-text").count() == 0
    assert not page.locator("#id_incoming_host").is_visible()  # incoming options wait for "Enable incoming"
    page.check("#id_incoming_enabled")
    assert page.locator("#id_incoming_host").is_visible()
    page.type("#id_email_address", "ventas@gmail.com")
    page.wait_for_selector("#preset-hint-text")
    assert "imap.gmail.com" in page.inner_text("#preset-hint-text")
    screenshot(page, "12-account-provider-hint")
