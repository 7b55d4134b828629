"""000 §3.4 — Cuenta de Correos Electrónicos Salientes (and §3.2's attachment limit, both ways).

The administrator sets each option in the account form in Chromium (in Spanish); the agent writes on
the compose page; an integrator sends bulk mail through the API. What is proved is what each of them,
and the customer, sees: the mail at the SMTP server as a mail client parses it (the server also keeps
which login sent it), the page in Spanish, the Sent folder on Dovecot through another IMAP client.
"""

from __future__ import annotations

import email
import re
import socket
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
import requests

from buzon.mailboxes.models import EmailAccount, EmailDomain
from tests.acceptance.conftest import MAILBOX_PASSWORD, customer_mail, set_fields
from tests.acceptance.lines import proves
from tests.support import browser as browser_support
from tests.support import ports
from tests.support.services import require
from tests.support.smtpd import SMTPServer

pytestmark = [pytest.mark.browser]

ACCOUNTS = "/settings/email/accounts/"


# --- the other servers a line needs ---------------------------------------------------------------

@pytest.fixture
def smtp_server(test_certs) -> Iterator[Callable[..., SMTPServer]]:
    """Start another SMTP server (kept messages, logins): `mode` plain/starttls/ssl, on `port` if given."""
    started: list[SMTPServer] = []

    def start(mode: str = "plain", *, users: dict[str, str] | None = None, require_auth: bool = True,
              port: int | None = None) -> SMTPServer:
        server = SMTPServer(test_certs, mode=mode, users=users, require_auth=require_auth)
        if port is not None:
            server.port = server.controller.port = ports.test_server_port(port)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _domain(site) -> EmailDomain:
    """The company's email domain (000-1: accounts at example.test need it), on Dovecot and the SMTP server."""
    return EmailDomain.objects.create(
        domain_name="example.test", incoming_protocol="imap", incoming_host="localhost",
        incoming_port=site.dovecot.imaps_port, incoming_security="ssl", smtp_host="localhost",
        smtp_port=site.sink.port, smtp_security=site.smtp_security, smtp_auth=True)


def _parsed(server: SMTPServer) -> list[EmailMessage]:
    return [email.message_from_bytes(m.data, policy=policy.default) for m in server.messages]  # type: ignore[misc]


def _text(mail: EmailMessage) -> str:
    """The plain text as the reader's mail program shows it (lines, whatever the wire's line ends)."""
    return mail.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]


# --- what the people do --------------------------------------------------------------------------

def _agent(site, username: str, store, *, first: str = "", last: str = "", **kwargs: Any):
    user = site.person(username, store=store, **kwargs)
    if first:
        user.first_name, user.last_name = first, last
        user.save()
    return user


def _edit_account(page, account: EmailAccount, *, check: tuple[str, ...] = (), uncheck: tuple[str, ...] = (),
                  fill: dict[str, str] | None = None, select: dict[str, str] | None = None) -> None:
    """The administrator opens the account's form, changes what the line is about and saves it."""
    page.goto(f"{ACCOUNTS}{account.pk}/edit/")
    set_fields(page, check=check, uncheck=uncheck, fill=fill, select=select)
    _save(page)


def _save(page, *, saved: bool = True) -> None:
    """Click Guardar: saved, the list comes back; refused, the form stays with its errors."""
    page.click("#save")
    page.wait_for_load_state()
    errors = _errors(page)
    on_list = bool(re.search(r"/settings/email/accounts/$", page.url))
    if saved:
        assert on_list and not errors, f"the account was not saved: {errors}"
    else:
        assert not on_list and errors, "the account was saved, but should have been refused"


def _errors(page) -> list[str]:
    """The errors the form shows, under their fields and above the form."""
    return page.locator("[data-error-for], #account-form .alert-danger").all_inner_texts()  # type: ignore[no-any-return]


def _compose(page, *, to: str, subject: str, text: str, account: EmailAccount | None = None,
             files: list[dict[str, Any]] | None = None) -> None:
    """The agent writes on the compose page and presses Enviar."""
    page.goto("/compose/")
    if account is not None:
        page.select_option("#id_account", str(account.pk))
    page.fill("#id_to", to)
    page.fill("#id_subject", subject)
    page.fill("#id_text", text)
    if files:
        page.set_input_files("#id_attachments", files)
    page.click("#send")
    page.wait_for_load_state()


def _sent_page(page) -> str:
    """After Enviar: the sent message's page (its delivery log); returns its path."""
    match = re.search(r"/sent/\d+/$", page.url)
    assert match, f"not sent: {page.locator('main').inner_text()[:1500]}"
    return match.group(0)


def _api_send(site, token: str, **body: Any) -> requests.Response:
    return requests.post(site.live_url + "/api/v1/messages/send/", json=body, timeout=60,
                         headers={"Authorization": f"Token {token}", "Accept-Language": "es"})


# --- the lines -------------------------------------------------------------------------------------

@proves("000-3.4")
def test_all_mail_the_system_sends_leaves_through_an_outgoing_account(browser_site):
    """«Todos los emails enviados desde el sistema, ya sea desde el usuario a un contacto, a través de
    notificaciones o a través de emails de transacciones, serán enviados desde una Cuenta de Correos
    Electrónicos Salientes ... si se está utilizando un servicio de email popular, las mismas ya
    estarán preconfiguradas.»

    An agent's mail, the auto-reply, the agent's notifications and bulk mail each reach the SMTP server
    logged in as one of the outgoing accounts, and from its address; nothing leaves any other way. A
    Gmail address needs no SMTP setting: the connection test goes to smtp.gmail.com by itself."""
    site = browser_site
    store = site.store("Norte")
    group = site.group("Ventas Norte", store)
    avisos = site.account(None, incoming=False, display_name="Avisos")  # the first: default outgoing
    norte = site.account(store, display_name="Soporte Norte", agent_group=group, create_customer_if_not_found=True,
                         notify_agent=True, auto_reply_enabled=True, auto_reply_message="Gracias por escribir.")
    lucia = _agent(site, "lucia", store, group=group)
    admin = site.person("admin", admin=True)

    site.customer_writes(norte, sender="Ana Pérez <ana@cliente.example>", subject="¿Tienen talla M?")
    site.sync(norte)  # the auto-reply to Ana, and Lucía's two notices (a new customer, a new mail)
    page = site.page(lucia)
    _compose(page, to="ana@cliente.example", subject="Re: ¿Tienen talla M?", text="Sí, la tenemos.")
    _sent_page(page)
    response = _api_send(site, site.token(admin), to=["boletin@cliente.example"], subject="Novedades",
                         text="Llegó la temporada de otoño.", kind="bulk")
    assert response.status_code == 202, response.text

    accounts = {norte.email_address, avisos.email_address}
    sent = [(m.login, m.mail_from, email.message_from_bytes(m.data, policy=policy.default))
            for m in site.sink.messages]
    for login, envelope_from, mail in sent:
        # Logged in as an outgoing account, sent as it: the account's own server carried it.
        assert login in accounts and envelope_from == login, (login, envelope_from, mail["Subject"])
        assert mail["From"].addresses[0].addr_spec == login
    by_kind = {
        "agent": [s for s in sent if "Sí, la tenemos." in _text(s[2])],
        "auto-reply": [s for s in sent if s[2]["Auto-Submitted"] == "auto-replied"],
        "notice": [s for s in sent if "lucia@tienda.example" in str(s[2]["To"])],
        "bulk": [s for s in sent if s[2]["Precedence"] == "bulk"],
    }
    assert {kind: len(found) for kind, found in by_kind.items()} == {"agent": 1, "auto-reply": 1, "notice": 2,
                                                                     "bulk": 1}
    assert len(sent) == 5
    assert {s[0] for s in by_kind["agent"] + by_kind["auto-reply"]} == {norte.email_address}
    assert {s[0] for s in by_kind["notice"] + by_kind["bulk"]} == {avisos.email_address}

    # A popular provider: nothing to fill in for SMTP. The hint says so, and the test goes there.
    page = site.page(admin)
    page.goto(f"{ACCOUNTS}new/")
    page.fill("#id_email_address", "tienda.norte@gmail.com")
    page.locator("#preset-hint-text").wait_for()
    assert "smtp.gmail.com:465" in page.locator("#preset-hint-text").inner_text()
    page.check("#id_outgoing_enabled")
    assert page.input_value("#id_smtp_host") == ""
    page.fill("#id_password", "una-clave-de-aplicacion")
    page.click("#test-connection")
    result = page.locator("#test-results [data-direction=outgoing]")
    result.wait_for()
    # No network here, so it cannot succeed; what matters is where Buzón went on its own.
    assert "smtp.gmail.com" in result.inner_text() and "SMTP" in result.inner_text(), result.inner_text()


@proves("000-3.4.tls")
def test_use_tls_sends_over_starttls(browser_site, smtp_server):
    """«Utilizar TLS». The company's server accepts mail only after STARTTLS (and a login only over
    it): with «STARTTLS» chosen, the agent's mail arrives there; with «Ninguna» the same server cannot
    be used and the form says so, naming SMTP, and keeps the working setting."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    norte = site.account(store)
    tls = smtp_server("starttls", users=dict(site.sink.users))
    admin, lucia = site.person("admin", admin=True), _agent(site, "lucia", store)
    page = site.page(admin)
    _edit_account(page, norte, fill={"smtp_port": str(tls.port)}, select={"smtp_security": "starttls"})

    page.goto(f"{ACCOUNTS}{norte.pk}/edit/")  # the same administrator tries to switch encryption off
    set_fields(page, select={"smtp_security": "none"})
    _save(page, saved=False)
    error = " ".join(page.locator("[data-error-for]").all_inner_texts())
    assert "SMTP" in error, error
    norte.refresh_from_db()
    assert norte.smtp_security == "starttls" and norte.smtp_port == tls.port

    agent_page = site.page(lucia)
    _compose(agent_page, to="ana@cliente.example", subject="Cifrado", text="Viaja cifrado.")
    _sent_page(agent_page)
    (mail,) = _parsed(tls)
    assert mail["Subject"] == "Cifrado" and "Viaja cifrado." in _text(mail)
    assert tls.messages[0].login == norte.email_address
    assert site.received() == []


@proves("000-3.4.port")
def test_port_chooses_where_mail_goes(browser_site, smtp_server):
    """«Puerto». Two SMTP servers on one host: the mail goes to the port the administrator typed."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    norte = site.account(store)  # on the first server's port
    other = smtp_server("plain", users=dict(site.sink.users))
    admin, lucia = site.person("admin", admin=True), _agent(site, "lucia", store)
    agent_page = site.page(lucia)
    _compose(agent_page, to="ana@cliente.example", subject="Primero", text="Por el primer puerto.")
    _sent_page(agent_page)
    _edit_account(site.page(admin), norte, fill={"smtp_port": str(other.port)})
    _compose(agent_page, to="ana@cliente.example", subject="Segundo", text="Por el otro puerto.")
    _sent_page(agent_page)
    assert [m["Subject"] for m in site.received()] == ["Primero"]
    assert [m["Subject"] for m in _parsed(other)] == ["Segundo"]


@proves("000-3.4.noauth")
def test_disable_smtp_authentication_sends_without_a_login(browser_site, smtp_server):
    """«Deshabilitar autenticación del servidor SMTP». A relay that takes mail from this machine and
    accepts no login: with authentication required the form cannot save it (the login fails, named as
    SMTP's); set to «No», Buzón sends without logging in and the mail arrives."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    relay = smtp_server("plain", users={}, require_auth=False)  # knows no user: any login fails
    norte = site.account(store, smtp_port=relay.port)
    admin, lucia = site.person("admin", admin=True), _agent(site, "lucia", store)
    page = site.page(admin)
    page.goto(f"{ACCOUNTS}{norte.pk}/edit/")
    set_fields(page, select={"smtp_auth": "true"})
    _save(page, saved=False)
    assert "SMTP" in " ".join(page.locator("[data-error-for]").all_inner_texts())
    _edit_account(page, norte, select={"smtp_auth": "false"})
    agent_page = site.page(lucia)
    _compose(agent_page, to="ana@cliente.example", subject="Sin usuario", text="Por el relay.")
    _sent_page(agent_page)
    (received,) = relay.messages
    assert received.login is None and received.mail_from == norte.email_address
    assert email.message_from_bytes(received.data, policy=policy.default)["Subject"] == "Sin usuario"


@proves("000-3.4.signature")
def test_add_signature_appends_the_signature_to_every_email(browser_site):
    """«Agregar Firma: La firma predeterminada se adjuntará al final de cada email.» The customer's
    mail ends with the signature the administrator wrote, after the usual "-- " line; without the
    option, it does not."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    norte = site.account(store)
    admin, lucia = site.person("admin", admin=True), _agent(site, "lucia", store)
    admin_page, agent_page = site.page(admin), site.page(lucia)
    _edit_account(admin_page, norte, check=("add_signature",),
                  fill={"signature": "Equipo Norte\nTel. 900 123 456"})
    _compose(agent_page, to="ana@cliente.example", subject="Con firma", text="Su pedido salió hoy.")
    _sent_page(agent_page)
    _edit_account(admin_page, norte, uncheck=("add_signature",))
    _compose(agent_page, to="ana@cliente.example", subject="Sin firma", text="Su pedido llegó.")
    _sent_page(agent_page)
    signed, unsigned = site.received()
    assert _text(signed).rstrip().endswith("Su pedido salió hoy.\n\n-- \nEquipo Norte\nTel. 900 123 456")
    assert "Equipo Norte" not in _text(unsigned) and "-- " not in _text(unsigned)


@proves("000-3.4.default")
def test_notifications_and_bulk_mail_leave_through_the_default_outgoing_account(browser_site):
    """«Saliente predeterminado: Las notificaciones y los emails enviados masivamente, serán enviados
    desde este servidor saliente.» The administrator stars another account as the default outgoing
    one: the agent's notices and the integrator's bulk mail leave through it, while the agent's own
    mail to a customer still leaves through the store's account; starring the store's account back
    moves the notices with it."""
    site = browser_site
    store = site.store("Norte")
    group = site.group("Ventas Norte", store)
    norte = site.account(store, display_name="Soporte Norte", agent_group=group,
                         create_customer_if_not_found=True, notify_agent=True)
    avisos = site.account(None, incoming=False, display_name="Avisos")
    assert norte.default_outgoing and not avisos.default_outgoing  # the first account was the default
    lucia = _agent(site, "lucia", store, group=group)
    admin = site.person("admin", admin=True)
    page = site.page(admin)

    def star(account: EmailAccount) -> None:
        """The administrator clicks the account's star in the outgoing column of the list."""
        def star_of(which: EmailAccount) -> Any:
            return page.locator(f"#account-table [data-account='{which.email_address}'] "
                                "form[action$='/default/outgoing/'] button")

        page.goto(ACCOUNTS)
        star_of(account).click()
        page.wait_for_load_state()
        other = avisos if account == norte else norte
        assert star_of(account).count() == 0 and star_of(other).count() == 1  # the mark moved

    def through(action: Callable[[], Any]) -> list[tuple[str | None, EmailMessage]]:
        """Do `action`; the mail it sent: (the login it was sent with, the mail as a client reads it)."""
        before = len(site.sink.messages)
        action()
        return [(m.login, email.message_from_bytes(m.data, policy=policy.default))  # type: ignore[misc]
                for m in site.sink.messages[before:]]

    def customer_writes(sender: str, subject: str) -> None:
        site.customer_writes(norte, sender=sender, subject=subject)
        site.sync(norte)

    def bulk() -> None:
        response = _api_send(site, site.token(admin), to=["ana@cliente.example"], subject="Ofertas de otoño",
                             text="Todo al 20 %.", kind="bulk")
        assert response.status_code == 202, response.text

    def agent_writes() -> None:
        _compose(agent_page, to="ana@cliente.example", subject="Re: Pedido 1", text="Ya salió.")
        _sent_page(agent_page)

    agent_page = site.page(lucia)
    star(avisos)
    notices = through(lambda: customer_writes("ana@cliente.example", "Pedido 1"))
    assert len(notices) == 2  # a customer assigned to Lucía, and the new mail
    assert {login for login, _mail in notices} == {avisos.email_address}
    assert {mail["To"].addresses[0].addr_spec for _login, mail in notices} == {"lucia@tienda.example"}
    ((login, newsletter),) = through(bulk)
    assert login == avisos.email_address and newsletter["Precedence"] == "bulk"
    assert newsletter["From"].addresses[0].addr_spec == avisos.email_address
    ((login, answer),) = through(agent_writes)  # a person's mail to a customer: the store's account
    assert login == norte.email_address and answer["From"].addresses[0].addr_spec == norte.email_address
    star(norte)
    notices = through(lambda: customer_writes("beto@cliente.example", "Pedido 2"))
    assert len(notices) == 2 and {login for login, _mail in notices} == {norte.email_address}


@proves("000-3.4.always")
def test_always_use_the_accounts_address_as_sender(browser_site):
    """«Utilizar siempre la dirección de correo electrónico de la cuenta como remitente: La dirección
    de email de esta cuenta será mencionada como emisora para correos salientes.» Off, the customer
    sees "Lucía Gómez via Soporte Norte" at the account's address; on, only the account. Either way
    the agent's own address is nowhere in the mail, so the answer comes back to the account."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    norte = site.account(store, display_name="Soporte Norte")
    admin = site.person("admin", admin=True)
    lucia = _agent(site, "lucia", store, first="Lucía", last="Gómez")
    agent_page = site.page(lucia)
    _compose(agent_page, to="ana@cliente.example", subject="Hola", text="Soy Lucía.")
    _sent_page(agent_page)
    _edit_account(site.page(admin), norte, check=("always_use_account_address",))
    _compose(agent_page, to="ana@cliente.example", subject="Hola otra vez", text="Sigo siendo Lucía.")
    _sent_page(agent_page)
    named, plain = site.received()
    for mail in (named, plain):
        assert mail["From"].addresses[0].addr_spec == norte.email_address
        assert "lucia@tienda.example" not in str(mail).lower()
        assert mail["Reply-To"] is None and mail["Sender"] is None
    assert "Lucía Gómez" in named["From"].addresses[0].display_name
    assert "Soporte Norte" in named["From"].addresses[0].display_name
    assert plain["From"].addresses[0].display_name == "Soporte Norte"


@proves("000-3.4.unsubscribe")
def test_unsubscribe_link_and_one_click_really_unsubscribe(browser_site):
    """«Incluir opción para darse de baja: Enviar un link para dar la baja de correos enviados desde
    esta dirección.» The newsletter carries the link in its text and a List-Unsubscribe header with
    RFC 8058 one-click. Ana's mail program uses the one-click POST; Luis opens the link and confirms in
    his browser (in Spanish). The next newsletter reaches neither of them, and still reaches Marta."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    norte = site.account(store)
    admin = site.person("admin", admin=True)
    _edit_account(site.page(admin), norte, check=("unsubscribe_link",))
    token = site.token(admin)
    people = ("ana@cliente.example", "luis@cliente.example", "marta@cliente.example")
    for address in people:
        response = _api_send(site, token, to=[address], subject="Boletín de octubre", text="Novedades.",
                             kind="bulk")
        assert response.status_code == 202, response.text
    first = {str(m["To"]): m for m in site.received()}
    assert set(first) == set(people)
    links = {}
    for address, mail in first.items():
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        header = re.fullmatch(r"<(https?://\S+)>", str(mail["List-Unsubscribe"]))
        assert header, mail["List-Unsubscribe"]
        links[address] = header.group(1)
        assert links[address] in _text(mail)  # the same link, for a reader, in the text
    assert len(set(links.values())) == 3  # each names its own recipient

    one_click = requests.post(links["ana@cliente.example"], data={"List-Unsubscribe": "One-Click"}, timeout=30)
    assert one_click.status_code == 200
    luis = browser_support.new_page(site.chromium, site.live_url, locale="es-ES")
    site._pages.append(luis)
    luis.goto(links["luis@cliente.example"])
    assert "baja" in luis.locator("h1").inner_text().lower()
    luis.locator("form button[type=submit]").click()
    luis.wait_for_load_state()
    assert "luis@cliente.example" in luis.locator("main, body").first.inner_text()
    assert "baja" in luis.locator("h1").inner_text().lower()

    for address in people:
        response = _api_send(site, token, to=[address], subject="Boletín de noviembre", text="Más novedades.",
                             kind="bulk")
        if address == "marta@cliente.example":
            assert response.status_code == 202, response.text
        else:  # refused at once, saying why, in the integrator's language
            assert response.status_code == 400 and "baja" in response.text.lower(), response.text
    november = [str(m["To"]) for m in site.received() if m["Subject"] == "Boletín de noviembre"]
    assert november == ["marta@cliente.example"]


@proves("000-3.4.track")
def test_one_recipient_opening_marks_the_email_opened(browser_site):
    """«Seguir el estado del Correo Electrónico: Rastrear si el email ha sido leído por el receptor.
    ... si se está enviando a muchos destinatarios, con que uno solo de ellos abra el correo, ya será
    considerado "Abierto".» Lucía writes to three customers; the page of what she sent says
    «Enviado»; one of them opens it (his mail program loads the images) and her page says «Abierto»."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    norte = site.account(store)
    admin, lucia = site.person("admin", admin=True), _agent(site, "lucia", store)
    _edit_account(site.page(admin), norte, check=("track_opens",))
    page = site.page(lucia)
    _compose(page, to="ana@cliente.example, luis@cliente.example, marta@cliente.example",
             subject="Su presupuesto", text="Adjuntamos el presupuesto pedido.")
    sent_path = _sent_page(page)
    assert page.locator("#status").inner_text() == "Enviado"
    (mail,) = site.received()
    assert len(site.sink.messages[0].rcpt_tos) == 3
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 1, html
    assert requests.get(images[0], timeout=30).status_code == 200  # Luis opens it; the others never do
    page.goto(sent_path)
    assert page.locator("#status").inner_text() == "Abierto"
    browser_support.screenshot(page, "acceptance-000-3.4-track-opened")


@proves("000-3.4.sent")
def test_sent_emails_are_added_to_the_sent_folder(browser_site):
    """«Agregar correos electrónicos a la carpeta de enviados: Si se usan servidores personalizados
    como Zimbra o CPanel, SMTP no adjuntará los emails a la Carpeta de Enviados. Habilitar esta opción
    asegurará que todos los emails son explícitamente adjuntados a la Carpeta de Enviados.» The SMTP
    server here files nothing: without the option Sent stays empty; with it, another mail program
    finds the very message (same Message-ID and text) in Sent."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    norte = site.account(store)
    admin, lucia = site.person("admin", admin=True), _agent(site, "lucia", store)
    agent_page = site.page(lucia)
    _compose(agent_page, to="ana@cliente.example", subject="Sin copia", text="Primero.")
    _sent_page(agent_page)
    assert site.on_server(norte.email_address, "Sent") == []
    _edit_account(site.page(admin), norte, check=("append_to_sent",))
    _compose(agent_page, to="ana@cliente.example", subject="Con copia", text="Segundo.")
    _sent_page(agent_page)
    sent = site.received()[-1]
    (copy,) = site.on_server(norte.email_address, "Sent")
    assert copy["Message-ID"] == sent["Message-ID"] and copy["Subject"] == "Con copia"
    assert _text(copy) == _text(sent)


@proves("000-3.4.ssl")
def test_ssl_for_outgoing_uses_port_465_by_default(browser_site, smtp_server):
    """«Usar SSL para saliente: Usar SSL como estándar para mails salientes. El puerto predeterminado
    es el 465.» The administrator creates an outgoing account choosing «SSL/TLS» and leaves the port
    empty: Buzón connects to port 465 with TLS from the first byte (the only server there), the sender
    confirmation and then the mail arrive there."""
    require(_port_free(465), "port 465 on 127.0.0.1 (bound by the test's SMTPS server; needs root)")
    site = browser_site
    ssl_server = smtp_server("ssl", port=465)
    EmailDomain.objects.create(domain_name="example.test", smtp_host="localhost", smtp_security="starttls",
                               smtp_auth=True, incoming_protocol="imap", incoming_host="localhost",
                               incoming_port=site.dovecot.imaps_port, incoming_security="ssl")
    address = site.mailbox("ventas")
    ssl_server.users[address] = MAILBOX_PASSWORD
    admin = site.person("admin", admin=True)
    page = site.page(admin)
    page.goto(f"{ACCOUNTS}new/")
    page.fill("#id_email_address", address)
    page.fill("#id_display_name", "Ventas")
    page.fill("#id_password", MAILBOX_PASSWORD)
    page.check("#id_outgoing_enabled")
    page.select_option("#id_smtp_security", "ssl")
    assert page.input_value("#id_smtp_port") == ""
    assert "465 (SSL)" in page.locator("#group-smtp_port .form-text").inner_text()
    _save(page)
    account = EmailAccount.objects.get(email_address=address)
    assert account.smtp_port is None and account.smtp_security == "ssl"

    page.goto(f"{ACCOUNTS}{account.pk}/confirm-sender/")
    page.click("#send-code")
    page.wait_for_load_state()
    (confirmation,) = _parsed(ssl_server)
    code = re.search(r"\b(\d{6})\b", _text(confirmation))
    assert code, _text(confirmation)
    page.fill("#id_code", code.group(1))
    page.click("#confirm-code")
    page.wait_for_load_state()
    _compose(page, to="ana@cliente.example", subject="Por SSL", text="Puerto 465.", account=account)
    _sent_page(page)
    assert [m["Subject"] for m in _parsed(ssl_server)][1:] == ["Por SSL"]
    assert ssl_server.messages[1].login == address
    assert site.received() == []


@proves("000-3.4.autoreply")
def test_auto_reply_reaches_the_customer_once_and_never_loops(browser_site):
    """«Habilitar Respuesta Automática: Si se encuentra habilitada esta opción, ingresar un mensaje
    automático de respuesta.» Ana gets the message the administrator wrote, once, marked as an
    automatic answer (RFC 3834: Auto-Submitted: auto-replied, In-Reply-To her mail); her second mail
    that day gets none; an out-of-office responder and a newsletter get none, so two automatic
    responders never answer each other."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    norte = site.account(store, create_customer_if_not_found=True)
    admin = site.person("admin", admin=True)
    _edit_account(site.page(admin), norte, check=("auto_reply_enabled",),
                  fill={"auto_reply_message": "Gracias por escribirnos: le respondemos en 24 horas."})
    first = site.customer_writes(norte, sender="Ana Pérez <ana@cliente.example>", subject="Cambio de talla")
    site.sync(norte)
    site.customer_writes(norte, sender="Ana Pérez <ana@cliente.example>", subject="Otra cosa")
    # An out-of-office answer from a responder that marks itself (RFC 3834), as Buzón's own does.
    site.customer_writes(norte, sender="pedro@cliente.example", subject="Estoy de vacaciones",
                         headers={"Auto-Submitted": "auto-replied"})
    site.customer_writes(norte, sender="noticias@tienda-amiga.example", subject="Boletín semanal",
                         headers={"Precedence": "bulk", "List-Id": "<noticias.tienda-amiga.example>"})
    site.sync(norte)
    (reply,) = site.received()
    assert reply["To"].addresses[0].addr_spec == "ana@cliente.example"
    assert reply["From"].addresses[0].addr_spec == norte.email_address
    assert reply["Auto-Submitted"] == "auto-replied"
    first_id = email.message_from_bytes(first, policy=policy.default)["Message-ID"]
    assert reply["In-Reply-To"] == first_id
    assert "le respondemos en 24 horas" in _text(reply)


@proves("000-3.4.errors")
def test_a_failing_smtp_setting_is_explained_with_a_help_page(browser_site):
    """«Si se encuentran errores al configurar la cuenta de email, referirse a esta página.» A wrong
    SMTP port: the form says in Spanish that outgoing mail (SMTP) could not be used, naming the server,
    links to the page that explains it, and keeps the working settings. A wrong password for SMTP
    alone is named as SMTP's, with its own page."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    norte = site.account(store)
    closed = ports.free_port()  # nothing listens there
    admin = site.person("admin", admin=True)
    page = site.page(admin)
    page.goto(f"{ACCOUNTS}{norte.pk}/edit/")
    set_fields(page, fill={"smtp_port": str(closed)})
    _save(page, saved=False)
    error = page.locator("[data-error-for=smtp_host]")
    text = error.inner_text()
    assert "Correo saliente (SMTP)" in text and "localhost" in text and str(closed) in text, text
    assert not [e for e in _errors(page) if "Correo entrante" in e]  # IMAP works: not named
    browser_support.screenshot(page, "acceptance-000-3.4-errors-form")
    help_link = error.locator("a").get_attribute("href")
    assert help_link and "/help/troubleshooting/" in help_link
    norte.refresh_from_db()
    assert norte.smtp_port == site.sink.port  # nothing was saved
    page.goto(help_link)
    explained = page.locator("main").inner_text()
    assert "rechazó la conexión" in explained and "puerto" in explained.lower(), explained
    browser_support.screenshot(page, "acceptance-000-3.4-errors-help")

    # The SMTP server refuses the login while the mailbox (IMAP) accepts it.
    site.sink.users[norte.email_address] = "otra-clave-en-el-servidor-smtp"
    page.goto(f"{ACCOUNTS}{norte.pk}/edit/")
    _save(page, saved=False)
    error = page.locator("[data-error-for=password]")
    text = error.inner_text()
    assert text.startswith("Correo saliente (SMTP)"), text
    assert not [e for e in _errors(page) if "Correo entrante" in e]  # the mailbox itself is fine
    page.goto(error.locator("a").get_attribute("href"))
    assert "contraseña" in page.locator("main").inner_text().lower()


@proves("000-3.2.limit")
def test_attachment_limit_applies_to_incoming_and_outgoing_mail(browser_site):
    """«Límite para Adjunto (MB)». With 1 MB: a customer's 2 MB file is left out of the stored mail and
    named beside it (in Spanish) while the small one is kept; the agent's 2 MB file is refused at once,
    naming the limit, and nothing is sent; a 300 KB file goes, byte for byte."""
    site = browser_site
    store = site.store("Norte")
    _domain(site)
    norte = site.account(store, create_customer_if_not_found=True)
    admin, lucia = site.person("admin", admin=True), _agent(site, "lucia", store)
    _edit_account(site.page(admin), norte, fill={"attachment_limit_mb": "1"})
    big, small = b"%PDF-1.4\n" + bytes(2 * 1024 * 1024), b"\x89PNG\r\n\x1a\n" + bytes(10_000)
    mail = email.message_from_bytes(customer_mail(to=norte.email_address, subject="Catálogo y foto"),
                                    policy=policy.default)
    mail.add_attachment(big, maintype="application", subtype="pdf", filename="catalogo.pdf")  # type: ignore[union-attr]
    mail.add_attachment(small, maintype="image", subtype="png", filename="foto.png")  # type: ignore[union-attr]
    site.customer_writes(norte, raw=mail.as_bytes(policy=policy.SMTP))
    site.sync(norte)
    page = site.page(lucia)
    page.goto("/inbox/")
    page.locator("#inbox-list a", has_text="Catálogo y foto").first.click()
    page.wait_for_load_state()
    attachments = page.locator("#attachments").inner_text()
    assert "foto.png" in attachments and "catalogo.pdf" not in attachments
    left_out = page.locator("#left-out").inner_text()
    assert "catalogo.pdf" in left_out and "límite" in left_out.lower(), left_out
    browser_support.screenshot(page, "acceptance-000-3.2-limit-incoming")

    _compose(page, to="ana@cliente.example", subject="Demasiado grande", text="Va el catálogo.",
             files=[{"name": "catalogo.pdf", "mimeType": "application/pdf", "buffer": big}])
    assert "/compose/" in page.url
    refusal = page.locator("#compose-form").inner_text()
    browser_support.screenshot(page, "acceptance-000-3.2-limit-outgoing")
    assert re.search(r"1,0\sMB", refusal) and norte.email_address in refusal, refusal  # the limit, in Spanish
    assert site.received() == []
    fits = bytes(range(256)) * 1200  # 300 KB
    _compose(page, to="ana@cliente.example", subject="Cabe", text="Va la tabla.",
             files=[{"name": "tabla.bin", "mimeType": "application/octet-stream", "buffer": fits}])
    _sent_page(page)
    (sent,) = site.received()
    (attachment,) = list(sent.iter_attachments())  # type: ignore[attr-defined]
    assert attachment.get_filename() == "tabla.bin" and attachment.get_content() == fits
