"""000 — Cuenta de Correo Electrónico: what it is, where it lives, creating one, its extra options.

The administrator works in Chromium (in Spanish, as the document does); the mail server is Dovecot and
the SMTP server keeps what it receives.
"""

from __future__ import annotations

import importlib

import pytest
import requests

from buzon.mailboxes.models import EmailAccount, EmailDomain
from buzon.mailboxes.system_account import ensure_system_account
from tests.acceptance.conftest import MAILBOX_PASSWORD, PASSWORD, customer_mail
from tests.acceptance.lines import proves
from tests.support import browser as browser_support

pytestmark = [pytest.mark.browser]


def _domain(site) -> EmailDomain:
    """The company's email domain, pointed at Dovecot (IMAPS) and the SMTP server."""
    return EmailDomain.objects.create(
        domain_name="example.test", incoming_protocol="imap", incoming_host="localhost",
        incoming_port=site.dovecot.imaps_port, incoming_security="ssl", smtp_host="localhost",
        smtp_port=site.sink.port, smtp_security=site.smtp_security, smtp_auth=True)


def _new_account_form(page, address: str, password: str) -> None:
    page.goto("/settings/email/accounts/")
    page.click("#new-account")
    page.fill("#id_email_address", address)
    page.fill("#id_display_name", "Atención al cliente")
    page.fill("#id_password", password)


@proves("000-intro.5", "000-2.1", "000-2.2", "000-2.3", "000-2.4")
def test_creating_an_account_from_the_settings_and_it_syncs(browser_site):
    """«Inicio > Configuración > Correo / Notificaciones > Cuenta de Correo Electrónico»; «Ir al listado
    de Cuenta de Correo Electrónico y hacer click en Nuevo»; «Ingresar la Dirección de correo electrónico
    con el Dominio»; «Ingresar la contraseña»; «Guardar. Si las credenciales son correctas, se
    sincronizará la cuenta.»"""
    site = browser_site
    _domain(site)
    admin = site.person("admin", admin=True)
    address = site.mailbox("soporte")
    site.dovecot.deliver(address, customer_mail(to=address, subject="Ya estaba en el buzón"))
    page = site.page(admin)
    # The document's path, in Spanish, from the home page.
    page.click("#bz-sidebar >> text=Correo / Notificaciones")
    page.click("main >> text=Cuenta de Correo Electrónico")
    crumbs = page.locator("nav[aria-label=breadcrumb], .breadcrumb").first.inner_text()
    for step in ("Inicio", "Configuración", "Correo / Notificaciones", "Cuenta de Correo Electrónico"):
        assert step in crumbs, crumbs
    page.click("#new-account")
    page.fill("#id_email_address", address)
    page.fill("#id_display_name", "Atención al cliente")
    page.fill("#id_password", "no-es-la-clave")
    page.check("#id_incoming_enabled")
    page.click("#save")
    error = page.locator("[data-error-for=password]")
    error.wait_for()
    assert "contraseña" in error.inner_text().lower()  # wrong credentials: said in plain Spanish, nothing saved
    assert not EmailAccount.objects.filter(email_address=address).exists()
    page.fill("#id_password", MAILBOX_PASSWORD)
    page.click("#save")
    page.wait_for_selector(f"#account-table [data-account='{address}']")
    account = EmailAccount.objects.get(email_address=address)
    assert account.domain is not None and account.domain.domain_name == "example.test"
    site.sync(account)  # what `buzon sync` does for a saved account
    page.goto("/inbox/")
    assert "Ya estaba en el buzón" in page.locator("#inbox-list").inner_text()
    browser_support.screenshot(page, "acceptance-000-2-inbox")


@proves("000-1")
def test_an_account_needs_a_domain_unless_its_provider_is_known(browser_site):
    """«Antes de crear una Cuenta de Correo Electrónico, se necesita un Dominio de Correo Electrónico. Sin
    embargo, se puede saltear este paso si se utiliza alguno de los servicios listados aquí.»"""
    site = browser_site
    admin = site.person("admin", admin=True)
    page = site.page(admin)
    _new_account_form(page, "ventas@empresa-sin-dominio.example", "una-clave")
    page.check("#id_incoming_enabled")
    page.click("#save")
    error = page.locator("[data-error-for=email_address], [data-error-for=domain]").first
    error.wait_for()
    assert "dominio" in error.inner_text().lower()
    assert not EmailAccount.objects.filter(email_address="ventas@empresa-sin-dominio.example").exists()
    # A Gmail address needs no domain: the provider's servers are filled in, and said so.
    _new_account_form(page, "tienda.norte@gmail.com", "una-clave")
    page.locator("#preset-hint-text").wait_for()
    hint = page.locator("#preset-hint-text").inner_text()
    assert "imap.gmail.com" in hint and "smtp.gmail.com" in hint and "dominio" in hint.lower()


@proves("000-2.obs")
def test_gmail_addresses_are_told_what_gmail_needs(browser_site):
    """«Observación: Para algunos servicios como Gmail, puede ser necesario editar las configuraciones para
    permitir aplicaciones menos seguras.» (Gmail now asks for an app password or sign-in with Google.)"""
    site = browser_site
    admin = site.person("admin", admin=True)
    page = site.page(admin)
    _new_account_form(page, "tienda.norte@gmail.com", "x")
    page.locator("#preset-hint-text").wait_for()
    hint = page.locator("#preset-hint-text").inner_text().lower()
    assert "contraseña de aplicación" in hint or "google" in hint, hint
    assert "active imap en gmail" in hint  # what to switch on in Gmail itself
    # Should Gmail still refuse the login, the error links to the page that says why, in Spanish.
    page.goto("/help/troubleshooting/login-rejected/")
    text = page.locator("main").inner_text().lower()
    assert "contraseña de aplicación" in text and "gmail" in text


@proves("000-intro.1")
def test_one_account_receives_and_sends(browser_site):
    """«Se puede sincronizar la Cuenta de Correo Electrónico para enviar y recibir emails.»"""
    site = browser_site
    store = site.store("Norte")
    account = site.account(store, create_customer_if_not_found=True)
    site.customer_writes(account, sender="ana@cliente.example", subject="¿Tienen talla M?")
    site.sync(account)
    lucia = site.person("lucia", store=store)
    page = site.page(lucia)
    page.goto("/compose/")
    page.fill("#id_to", "ana@cliente.example")
    page.fill("#id_subject", "Re: ¿Tienen talla M?")
    page.fill("#id_text", "Sí, la tenemos.")
    page.click("#send")
    page.wait_for_load_state()
    received = site.received()
    assert len(received) == 1
    mail = received[0]
    assert mail["To"].addresses[0].addr_spec == "ana@cliente.example"
    assert account.email_address in str(mail["From"])
    assert "Sí, la tenemos." in mail.get_body(("plain",)).get_content()


@proves("000-intro.2")
def test_many_incoming_and_outgoing_accounts(site):
    """«En DiamoERP se pueden administrar muchas Cuentas de Correo Electrónico entrantes y salientes.»
    Through the API, as an integrator sets up a site: 12 accounts of each kind, listed back."""
    _domain(site)
    admin = site.person("admin", admin=True)
    token = site.token(admin)
    for index in range(12):
        response = requests.post(site.live_url + "/api/v1/email-accounts/", timeout=30, json={
            "email_address": f"salida{index}@example.test", "outgoing_enabled": True, "smtp_host": "localhost",
            "smtp_port": site.sink.port, "smtp_security": site.smtp_security, "smtp_auth": False,
        }, headers={"Authorization": f"Token {token}"})
        assert response.status_code == 201, response.text
    for index in range(12):
        site.account(None, outgoing=False)
    listed = requests.get(site.live_url + "/api/v1/email-accounts/?limit=100", timeout=30,
                          headers={"Authorization": f"Token {token}"}).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert sum(1 for r in rows if r["outgoing_enabled"]) >= 12
    assert sum(1 for r in rows if r["incoming_enabled"]) >= 12


@proves("000-intro.3")
def test_there_is_always_a_default_incoming_and_outgoing_account(browser_site):
    """«Tiene que haber por lo menos una cuenta predeterminada de entrantes y una de salientes.»
    The first account of each kind becomes the default; the default cannot be deleted while others
    exist; the star moves it."""
    site = browser_site
    _domain(site)
    admin = site.person("admin", admin=True)
    token = site.token(admin)
    for _ in range(2):  # two accounts, saved as the admin saves them (the API runs the same rules as the form)
        address = site.mailbox()
        response = requests.post(site.live_url + "/api/v1/email-accounts/", timeout=30, json={
            "email_address": address, "password": MAILBOX_PASSWORD,
            "incoming_enabled": True, "incoming_protocol": "imap", "incoming_host": "localhost",
            "incoming_port": site.dovecot.imaps_port, "incoming_security": "ssl",
            "outgoing_enabled": True, "smtp_host": "localhost", "smtp_port": site.sink.port,
            "smtp_security": site.smtp_security, "smtp_auth": True,
        }, headers={"Authorization": f"Token {token}"})
        assert response.status_code == 201, response.text
    defaults = EmailAccount.objects.filter(default_incoming=True).count(), \
        EmailAccount.objects.filter(default_outgoing=True).count()
    assert defaults == (1, 1)
    page = site.page(admin)
    page.goto("/settings/email/accounts/")
    page.goto(f"/settings/email/accounts/{EmailAccount.objects.get(default_incoming=True).pk}/delete/")
    page.locator("form button[type=submit], #confirm-delete").last.click()
    page.wait_for_load_state()
    assert EmailAccount.objects.filter(default_incoming=True).count() == 1
    assert "predeterminad" in page.locator("main").inner_text().lower()


@proves("000-intro.4")
def test_the_implementers_outgoing_account_is_read_only(browser_site, settings):
    """«Si se utiliza la nube de DiamoERP, la cuenta de correos salientes es configurada por el
    implementador.»"""
    site = browser_site
    settings.SYSTEM_SMTP_URL = f"smtp://localhost:{site.sink.port}?from=avisos@nube.example&name=Nube"
    ensure_system_account()
    system = EmailAccount.objects.get(is_system=True)
    assert system.default_outgoing and system.email_address == "avisos@nube.example"
    admin = site.person("admin", admin=True)
    page = site.page(admin)
    page.goto("/settings/email/accounts/")
    row = page.locator("#account-table [data-account='avisos@nube.example']")
    assert "Sistema" in row.inner_text()
    assert row.locator("a[href$='/edit/']").count() == 0
    page.goto(f"/settings/email/accounts/{system.pk}/edit/")  # typed by hand: the read-only view instead
    assert page.locator("#account-form").count() == 0 and "avisos@nube.example" in page.locator("main").inner_text()
    assert MAILBOX_PASSWORD not in page.content()


@proves("000-2.1.1")
def test_a_different_login_id_still_sends_as_the_account(browser_site):
    """«Utilizar ID de acceso de correo electrónico diferente ... Los receptores del email verán la cuenta
    [email protected] como la cuenta desde la cual se envió el mail.»"""
    site = browser_site
    store = site.store("Norte")
    login = site.mailbox("acceso")  # the mailbox the login opens
    account = site.account(store, address="info@tienda.example", login=login)
    site.dovecot.deliver(login, customer_mail(to="info@tienda.example", subject="Por el acceso alternativo"))
    site.sync(account)
    lucia = site.person("lucia", store=store)
    page = site.page(lucia)
    page.goto("/inbox/")
    assert "Por el acceso alternativo" in page.locator("#inbox-list").inner_text()
    page.goto("/compose/")
    page.fill("#id_to", "ana@cliente.example")
    page.fill("#id_subject", "Hola")
    page.fill("#id_text", "Saludos")
    page.click("#send")
    page.wait_for_load_state()
    (mail,) = site.received()
    assert mail["From"].addresses[0].addr_spec == "info@tienda.example"


@proves("000-2.1.2")
def test_awaiting_password_asks_the_owner_at_sign_in(browser_site):
    """«Esperando contraseña: Si se está creando esta cuenta en nombre de alguien y la contraseña es
    desconocida ... Cuando el otro usuario inicie sesión, se le pedirá ingresar la contraseña.»"""
    site = browser_site
    store = site.store("Norte")
    owner = site.person("marta", store=store)
    address = site.mailbox("marta")
    account = site.account(store, address=address, owner=owner, awaiting_password=True, state="awaiting_password",
                           domain=_domain(site))
    account.password_encrypted = ""
    account.save()
    site.dovecot.deliver(address, customer_mail(to=address, subject="Para Marta"))
    page = browser_support.new_page(site.chromium, site.live_url, locale="es-ES")
    site._pages.append(page)
    browser_support.sign_in(page, "marta", PASSWORD)
    assert "/passwords/" in page.url  # asked at once
    page.locator("input[type=password]").first.fill(MAILBOX_PASSWORD)
    page.locator("main button[type=submit]").first.click()
    page.wait_for_load_state()
    account.refresh_from_db()
    assert not account.awaiting_password and account.get_password() == MAILBOX_PASSWORD
    site.sync(account)
    page.goto("/inbox/")
    assert "Para Marta" in page.locator("#inbox-list").inner_text()


@proves("000-2.1.3")
def test_ascii_password_encoding(site):
    """«Use la codificación ASCII para la contraseña.» An ASCII password signs in either way; a
    non-ASCII one with the option on is refused before anything is sent, in plain words."""
    from buzon.mailboxes.probe import probe_account

    store = site.store("Norte")
    account = site.account(store, ascii_password=True, outgoing=False)
    site.customer_writes(account, subject="Con clave ASCII")
    site.sync(account)
    assert site.on_server(account.email_address)
    report = probe_account(account, incoming=True, outgoing=False)
    assert report.incoming.ok
    account.set_password("contraseña-ñ")
    account.save()
    report = probe_account(account, incoming=True, outgoing=False)
    assert not report.incoming.ok and "ASCII" in str(report.incoming.error)


@proves("000-3.1")
def test_predefined_accounts_wait_disabled_until_filled_in(browser_site):
    """«DiamoERP posee, de forma predeterminada, plantillas para diversas cuentas de email. No todas
    están habilitadas. Para habilitarlas se deben configurar detalles válidos para la cuenta de email.»"""
    site = browser_site
    _predefined_accounts()
    _domain(site)
    admin = site.person("admin", admin=True)
    page = site.page(admin)
    page.goto("/")
    assert page.locator(".bz-stat").first.inner_text() == "0"  # offers are not accounts yet
    page.goto("/settings/email/accounts/")
    offers = page.locator("#account-templates").inner_text()
    for name in ("Soporte", "Empleo", "Notificaciones", "Ventas"):
        assert name in offers, offers
    assert not EmailAccount.objects.filter(template_role__gt="", incoming_enabled=True).exists()
    address = site.mailbox("soporte")
    page.locator("#account-templates a", has_text="Completar").last.click()
    page.fill("#id_email_address", address)
    page.fill("#id_password", MAILBOX_PASSWORD)
    page.check("#id_incoming_enabled")
    page.click("#save")
    page.wait_for_selector(f"#account-table [data-account='{address}']")
    account = EmailAccount.objects.get(email_address=address)
    assert account.template_role and account.incoming_enabled
    assert "Soporte" not in page.locator("#account-templates").inner_text()


def _predefined_accounts() -> None:
    """The predefined accounts the migrations made (the suite's database is emptied between tests)."""
    from django.apps import apps as django_apps

    module = importlib.import_module("buzon.mailboxes.migrations.0003_account_templates")
    module.create_templates(django_apps, None)
