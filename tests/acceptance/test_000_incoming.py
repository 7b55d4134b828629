"""000 §3.2–3.3 — Cuenta de Correos Electrónicos Entrantes, and the alert for unreplied mail.

The administrator sets each option in the account form in Chromium (in Spanish); customers' mail lands
in real Dovecot mailboxes (delivered as an MTA does, read or unread) and Buzón's sync engine brings it
in; the agent looks at the inbox, the Tickets and Job applicants pages, and the message page; the
alert for unreplied mail is read at the SMTP server as a mail client parses it. Time for the alert is
moved with a controllable clock (freezegun) around the scheduler's own command, never slept through.
"""

from __future__ import annotations

import datetime as dt
import email
import io
import re
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import call_command
from django.utils import timezone
from freezegun import freeze_time

from buzon.mailboxes.models import EmailAccount, EmailDomain
from buzon.messages.models import Direction, Message
from buzon.sync.account import eligible_accounts
from tests.acceptance.conftest import MAILBOX_PASSWORD, customer_mail, set_fields
from tests.acceptance.lines import proves
from tests.support import browser as browser_support
from tests.support import dovecot as dovecot_support
from tests.support.certs import TestCerts
from tests.support.services import require

pytestmark = [pytest.mark.browser]

ACCOUNTS = "/settings/email/accounts/"


# --- what the administrator set up before ----------------------------------------------------------

def _company_domain(site, *, incoming: bool = True) -> EmailDomain:
    """The company's Email Domain (000-1), its servers on Dovecot (IMAPS) and the SMTP server; the
    accounts on it may override them."""
    servers = {"incoming_protocol": "imap", "incoming_host": "localhost", "incoming_port": site.dovecot.imaps_port,
               "incoming_security": "ssl"} if incoming else {"incoming_host": ""}
    return EmailDomain.objects.create(domain_name="example.test", smtp_host="localhost", smtp_port=site.sink.port,
                                      smtp_security=site.smtp_security, smtp_auth=True, **servers)


# --- what the people do --------------------------------------------------------------------------

def _edit_account(page, account: EmailAccount, *, check: tuple[str, ...] = (), uncheck: tuple[str, ...] = (),
                  fill: dict[str, str] | None = None, select: dict[str, str] | None = None,
                  saved: bool = True) -> str:
    """The administrator opens the account's form, changes what the line is about and presses
    Guardar; returns the errors the form shows (none when `saved`)."""
    page.goto(f"{ACCOUNTS}{account.pk}/edit/")
    set_fields(page, check=check, uncheck=uncheck, fill=fill, select=select)
    page.click("#save")
    page.wait_for_load_state()
    errors = " ".join(page.locator("[data-error-for], #account-form .alert-danger").all_inner_texts())
    on_list = bool(re.search(r"/settings/email/accounts/$", page.url))
    if saved:
        assert on_list and not errors, f"the account was not saved: {errors}"
    else:
        assert not on_list and errors, "the account was saved, but should have been refused"
    return errors


def _inbox(page) -> str:
    """What the agent reads in the inbox list ("" when it says there is nothing)."""
    page.goto("/inbox/")
    listing = page.locator("#inbox-list")
    return listing.inner_text() if listing.count() else ""


def _records(page, path: str) -> list[str]:
    """The rows of the Tickets or Job applicants page, as the agent reads them."""
    page.goto(path)
    return [row.strip() for row in page.locator("#records-table tbody tr").all_inner_texts()]


def _open_message(page, subject: str) -> None:
    page.goto("/inbox/")
    page.locator("#inbox-list a", has_text=subject).first.click()
    page.wait_for_load_state()


def _conversation(page) -> str:
    """The message page's «Conversación» card: every mail of the record the message belongs to."""
    return page.locator(".card:has(> .card-header:text-is('Conversación'))").inner_text()


def _reply_in_browser(page, message_pk: int, text: str, account: EmailAccount | None = None) -> str:
    """The agent opens a received message, presses «Responder», writes and presses Enviar; returns the
    sent page's path."""
    page.goto(f"/inbox/{message_pk}/")
    page.click("#reply")
    page.wait_for_load_state()
    if account is not None:
        page.select_option("#id_account", str(account.pk))
    page.fill("#id_text", text)
    page.click("#send")
    page.wait_for_load_state()
    match = re.search(r"/sent/\d+/$", page.url)
    assert match, f"not sent: {page.locator('main').inner_text()[:1500]}"
    return match.group(0)


def _received_pk(subject: str) -> int:
    return Message.objects.filter(direction=Direction.INCOMING, subject=subject).values_list("pk", flat=True).get()


def _engine_pass(site) -> None:
    """One pass of the sync engine over the accounts it watches (incoming enabled, not awaiting a
    password), as `buzon sync` does for the whole site."""
    site.sync(*EmailAccount.objects.filter(pk__in=list(eligible_accounts())).order_by("pk"))


def _api(site, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    """An integrator's call, with their token, asking for Spanish."""
    return requests.request(method, site.live_url + path, json=body, timeout=60,
                            headers={"Authorization": f"Token {token}", "Accept-Language": "es"})


def _text(mail: EmailMessage) -> str:
    return mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]


# --- a mail server with a self-signed certificate --------------------------------------------------

def _self_signed(directory: Path, hostname: str = "localhost") -> TestCerts:
    """A certificate that signs itself: no authority anyone trusts vouches for it."""
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    out = TestCerts(directory / "cert.pem", directory / "cert.pem", directory / "key.pem")
    out.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return out


@pytest.fixture
def self_signed_dovecot(tmp_path: Path) -> Iterator[dovecot_support.Dovecot]:
    require(dovecot_support.available(), "Dovecot (Debian packages dovecot-imapd, dovecot-pop3d)")
    server = dovecot_support.Dovecot(certs=_self_signed(tmp_path / "self-signed")).start()
    yield server
    server.cleanup()


# --- the lines -------------------------------------------------------------------------------------

@proves("000-3.2")
def test_enable_incoming_and_popular_providers_come_preconfigured(browser_site):
    """«Para configurar una Cuenta de Correo Electrónico entrante, hacer click en el campo Habilitar
    correos entrantes y editar las configuraciones POP3, si se está utilizando un servicio de email
    popular, las mismas ya estarán preconfiguradas.»

    An account that only sends is not synced: the customer's mail waits on the server. The
    administrator ticks «Habilitar correos entrantes», gives the POP3 server, saves (the connection is
    tested), and the next pass of the sync engine brings the mail to the agent's inbox. A Gmail or
    Outlook address needs no server typed in: the form names the provider's servers, and the
    connection test goes to imap.gmail.com on its own."""
    site = browser_site
    _company_domain(site, incoming=False)
    store = site.store("Norte")
    norte = site.account(store, incoming=False, incoming_protocol="", incoming_host="", incoming_port=None,
                         incoming_security="", create_customer_if_not_found=True)
    admin, lucia = site.person("admin", admin=True), site.person("lucia", store=store)
    site.customer_writes(norte, subject="Esperando en el servidor")
    _engine_pass(site)
    agent_page = site.page(lucia)
    assert "Esperando en el servidor" not in _inbox(agent_page)

    page = site.page(admin)
    page.goto(f"{ACCOUNTS}{norte.pk}/edit/")
    assert not page.is_visible("#id_incoming_host")  # the incoming settings open with the tick
    page.check("#id_incoming_enabled")
    assert page.is_visible("#id_incoming_host")
    _edit_account(page, norte, check=("incoming_enabled",), select={"incoming_protocol": "pop3",
                                                                    "incoming_security": "ssl"},
                  fill={"incoming_host": "localhost", "incoming_port": str(site.dovecot.pop3s_port)})
    _engine_pass(site)
    assert "Esperando en el servidor" in _inbox(agent_page)

    # Popular providers: the servers are already known.
    page.goto(f"{ACCOUNTS}new/")
    page.fill("#id_email_address", "ventas.norte@hotmail.es")
    page.locator("#preset-hint-text").wait_for()
    hint = page.locator("#preset-hint-text").inner_text()
    assert "outlook.office365.com:993 (IMAP)" in hint and "dominio" in hint.lower(), hint
    page.fill("#id_email_address", "tienda.norte@gmail.com")
    page.locator("#preset-hint-text", has_text="Gmail").wait_for()
    assert "imap.gmail.com:993 (IMAP)" in page.locator("#preset-hint-text").inner_text()
    page.check("#id_incoming_enabled")
    assert page.input_value("#id_incoming_host") == "" and page.input_value("#id_incoming_port") == ""
    page.fill("#id_password", "una-clave-de-aplicacion")
    page.click("#test-connection")
    result = page.locator("#test-results [data-direction=incoming]")
    result.wait_for()
    # No network here, so it cannot log in; what matters is where Buzón went by itself.
    assert "imap.gmail.com" in result.inner_text(), result.inner_text()
    browser_support.screenshot(page, "acceptance-000-3.2-gmail")


@proves("000-3.2.imap")
def test_imap_and_pop3_both_bring_the_mail(browser_site):
    """«Usar IMAP». Two mailboxes: the administrator leaves one on IMAP with a second folder to read,
    and switches the other to POP3. Both bring the customers' mail to the inbox; IMAP also reads the
    «Pedidos» folder, POP3 only the inbox (it knows no folders). Dovecot's log shows each account
    logged in with the protocol chosen."""
    site = browser_site
    _company_domain(site)
    store = site.store("Norte")
    by_imap = site.account(store, create_customer_if_not_found=True)
    by_pop = site.account(store, create_customer_if_not_found=True)
    admin, lucia = site.person("admin", admin=True), site.person("lucia", store=store)
    for account, name in ((by_imap, "IMAP"), (by_pop, "POP3")):
        site.customer_writes(account, subject=f"Bandeja por {name}")
        site.dovecot.deliver(account.email_address, customer_mail(to=account.email_address,
                                                                  subject=f"Carpeta Pedidos por {name}"),
                             folder="Pedidos")  # a filter on the server files orders there
    page = site.page(admin)
    _edit_account(page, by_imap, select={"incoming_protocol": "imap"}, fill={"folders": "INBOX\nPedidos"})
    _edit_account(page, by_pop, select={"incoming_protocol": "pop3"},
                  fill={"incoming_port": str(site.dovecot.pop3s_port)})
    site.sync(by_imap, by_pop)
    inbox = _inbox(site.page(lucia))
    assert "Bandeja por IMAP" in inbox and "Carpeta Pedidos por IMAP" in inbox
    assert "Bandeja por POP3" in inbox and "Carpeta Pedidos por POP3" not in inbox
    log = site.dovecot.log()
    assert re.search(rf"pop3-login: Info: Login: user=<{re.escape(by_pop.email_address)}>", log)
    assert re.search(rf"imap-login: Info: Login: user=<{re.escape(by_imap.email_address)}>", log)
    assert not re.search(rf"imap-login: Info: Login: user=<{re.escape(by_pop.email_address)}>", log)


@proves("000-3.2.ssl")
def test_ssl_and_starttls_work_and_a_self_signed_server_is_refused_unless_trusted(browser_site,
                                                                                 self_signed_dovecot):
    """«Utilizar SSL». With «SSL/TLS» (TLS from the first byte) and with «STARTTLS» the mail comes in,
    and Dovecot's log shows both logins encrypted. Certificates are verified unless the administrator
    says otherwise: a new account's form has the check ticked; a server whose certificate signs itself
    is refused when saving, in plain Spanish words, and nothing changes; with «verificar los
    certificados TLS» unticked the same server is used and its mail arrives."""
    site = browser_site
    _company_domain(site)
    store = site.store("Norte")
    tls = site.account(store, create_customer_if_not_found=True)
    starttls = site.account(store, create_customer_if_not_found=True)
    admin, lucia = site.person("admin", admin=True), site.person("lucia", store=store)
    page = site.page(admin)
    _edit_account(page, tls, select={"incoming_security": "ssl"}, fill={"incoming_port": str(site.dovecot.imaps_port)})
    _edit_account(page, starttls, select={"incoming_security": "starttls"},
                  fill={"incoming_port": str(site.dovecot.imap_port)})
    site.customer_writes(tls, subject="Por SSL/TLS")
    site.customer_writes(starttls, subject="Por STARTTLS")
    site.sync(tls, starttls)
    inbox = _inbox(site.page(lucia))
    assert "Por SSL/TLS" in inbox and "Por STARTTLS" in inbox
    log = site.dovecot.log()
    for account in (tls, starttls):
        logins = re.findall(rf"imap-login: Info: Login: user=<{re.escape(account.email_address)}>.*", log)
        assert logins and all(", TLS" in line for line in logins), logins

    page.goto(f"{ACCOUNTS}new/")
    assert page.is_checked("#id_tls_verify")  # on unless turned off
    # The same mailbox moves to a server whose certificate nobody vouches for.
    self_signed_dovecot.add_user(tls.email_address, MAILBOX_PASSWORD)
    self_signed_dovecot.deliver(tls.email_address, customer_mail(to=tls.email_address, subject="Servidor propio"))
    errors = _edit_account(page, tls, fill={"incoming_port": str(self_signed_dovecot.imaps_port)}, saved=False)
    assert "certificado" in errors and "autofirmado" in errors, errors
    tls.refresh_from_db()
    assert tls.incoming_port == site.dovecot.imaps_port and tls.tls_verify
    _edit_account(page, tls, uncheck=("tls_verify",), fill={"incoming_port": str(self_signed_dovecot.imaps_port)})
    site.sync(tls)
    assert "Servidor propio" in _inbox(site.page(lucia))


@proves("000-3.2.default")
def test_replies_to_the_company_come_to_the_default_incoming_account(browser_site):
    """«Entrante predeterminado: Si se encuentra seleccionada, todas las respuestas a la empresa (ej:
    [email protected]) se recibirán en esta cuenta.»

    The shop's order system (an integrator, through the API) opens a ticket and writes to Ana from
    «Ventas», an account that only sends. Her mail program is told to answer the default incoming
    account, so her answer lands in that mailbox and joins the ticket, where Lucía reads it in
    Chromium. The administrator ticks «Entrante predeterminado» on another account: the mark moves
    there, and the answers to the next ticket arrive there, and join that ticket."""
    site = browser_site
    _company_domain(site)
    store = site.store("Norte")
    soporte = site.account(store, display_name="Soporte", append_to="ticket", create_customer_if_not_found=True)
    respuestas = site.account(store, display_name="Respuestas", append_to="ticket",
                              create_customer_if_not_found=True)
    ventas = site.account(store, display_name="Ventas", incoming=False)
    assert soporte.default_incoming and not respuestas.default_incoming
    admin, lucia = site.person("admin", admin=True), site.person("lucia", store=store)
    integrator = site.token(admin)

    def order_system_writes(subject: str) -> tuple[int, EmailMessage]:
        """A ticket about Ana's order, and a mail about it from Ventas; returns the ticket and the mail."""
        ticket = _api(site, integrator, "post", "/api/v1/tickets/", {"subject": subject, "store": store.pk})
        assert ticket.status_code == 201, ticket.text
        sent = _api(site, integrator, "post", "/api/v1/messages/send/", {
            "account": ventas.pk, "to": ["ana@cliente.example"], "subject": subject,
            "text": "Su pedido sale de nuestro almacén el lunes.",
            "record": {"type": "ticket", "id": ticket.json()["id"]}})
        assert sent.status_code == 202, sent.text
        mail = site.received()[-1]
        assert mail["From"].addresses[0].addr_spec == ventas.email_address
        return ticket.json()["id"], mail

    def ana_answers(mail: EmailMessage, text: str) -> str:
        """Ana presses Responder: her answer goes where the mail says (Reply-To); returns that address."""
        (home,) = mail["Reply-To"].addresses
        account = EmailAccount.objects.get(email_address=home.addr_spec)
        site.customer_writes(account, sender="Ana Pérez <ana@cliente.example>", subject=f"Re: {mail['Subject']}",
                             body=text, headers={"In-Reply-To": mail["Message-ID"], "References": mail["Message-ID"]})
        _engine_pass(site)
        return account.email_address

    first_ticket, first_mail = order_system_writes("Retraso del pedido 1234")
    assert ana_answers(first_mail, "El lunes me viene bien.") == soporte.email_address

    page = site.page(admin)
    _edit_account(page, respuestas, check=("default_incoming",))
    row = page.locator(f"#account-table [data-account='{respuestas.email_address}']").inner_text()
    assert "Predeterminad" in row, row
    second_ticket, second_mail = order_system_writes("Cambio de dirección del pedido 5678")
    assert ana_answers(second_mail, "Mejor a la oficina, gracias.") == respuestas.email_address

    agent_page = site.page(lucia)
    assert len(_records(agent_page, "/tickets/")) == 2  # the answers started no ticket of their own
    for ticket, answer in ((first_ticket, "El lunes me viene bien."), (second_ticket, "Mejor a la oficina")):
        pk = Message.objects.get(direction=Direction.INCOMING, text__contains=answer).pk
        agent_page.goto(f"/inbox/{pk}/")
        assert agent_page.locator("#record-token").inner_text().startswith(f"[#T-{ticket}-")
        conversation = _conversation(agent_page)
        assert conversation.count("pedido") == 2, conversation  # what Ventas sent, and Ana's answer
    browser_support.screenshot(agent_page, "acceptance-000-3.2-default-incoming")


@proves("000-3.2.sync")
def test_only_unread_mail_leaves_out_what_was_already_read_on_the_server(browser_site):
    """«Opción de Sincronización de Correos: se puede configurar para sincronizar todos los correos
    electrónicos o solo los no vistos.» Two mailboxes each hold a message already read (in a phone's
    mail app, say) and one unread. With «Todo el correo» both come in; with «Solo el correo no leído»
    only the unread one, also for mail read on the server before a later pass."""
    site = browser_site
    _company_domain(site)
    store = site.store("Norte")
    everything = site.account(store, create_customer_if_not_found=True)
    unread = site.account(store, create_customer_if_not_found=True)
    admin, lucia = site.person("admin", admin=True), site.person("lucia", store=store)
    page = site.page(admin)
    _edit_account(page, everything, select={"sync_option": "all"})
    _edit_account(page, unread, select={"sync_option": "unseen"})
    page.goto(f"{ACCOUNTS}{unread.pk}/edit/")
    assert "Solo el correo no leído" in page.locator("#id_sync_option option:checked").inner_text()
    for account, name in ((everything, "todo"), (unread, "no leídos")):
        site.dovecot.deliver(account.email_address, customer_mail(to=account.email_address,
                                                                  subject=f"Ya leído ({name})"), seen=True)
        site.customer_writes(account, subject=f"Sin leer ({name})")
    site.sync(everything, unread)
    site.dovecot.deliver(unread.email_address, customer_mail(to=unread.email_address,
                                                             subject="Leído antes de la segunda pasada"), seen=True)
    site.customer_writes(unread, subject="Nuevo sin leer")
    site.sync(everything, unread)
    inbox = _inbox(site.page(lucia))
    for shown in ("Ya leído (todo)", "Sin leer (todo)", "Sin leer (no leídos)", "Nuevo sin leer"):
        assert shown in inbox, (shown, inbox)
    for hidden in ("Ya leído (no leídos)", "Leído antes de la segunda pasada"):
        assert hidden not in inbox, (hidden, inbox)
    # Nothing is lost on the server: another mail client still finds all of it.
    assert len(site.on_server(unread.email_address)) == 4


@proves("000-3.2.count")
def test_initial_sync_count_brings_the_newest_first_then_everything_new(browser_site):
    """«Conteo de sincronización inicial: Número de correos a sincronizar la primera vez.» Five old
    messages wait in an IMAP and in a POP3 mailbox; with 2 set in the form the first pass brings the
    two newest of each; after that every new message comes in, more than two at a time."""
    site = browser_site
    _company_domain(site)
    store = site.store("Norte")
    by_imap = site.account(store, create_customer_if_not_found=True)
    by_pop = site.account(store, protocol="pop3", create_customer_if_not_found=True)
    admin, lucia = site.person("admin", admin=True), site.person("lucia", store=store)

    def arrive(account: EmailAccount, subject: str) -> None:
        site.customer_writes(account, subject=subject)
        site.dovecot.message_count(account.email_address)  # the server numbers it now, in arrival order

    for account, name in ((by_imap, "IMAP"), (by_pop, "POP3")):
        for number in range(1, 6):
            arrive(account, f"Antiguo {number} {name}")
    page = site.page(admin)
    for account in (by_imap, by_pop):
        _edit_account(page, account, fill={"initial_sync_count": "2"})
    site.sync(by_imap, by_pop)
    agent_page = site.page(lucia)
    inbox = _inbox(agent_page)
    for name in ("IMAP", "POP3"):
        assert [n for n in range(1, 6) if f"Antiguo {n} {name}" in inbox] == [4, 5], inbox
    for account, name in ((by_imap, "IMAP"), (by_pop, "POP3")):
        for number in range(1, 4):
            arrive(account, f"Nuevo {number} {name}")
    site.sync(by_imap, by_pop)
    inbox = _inbox(agent_page)
    for name in ("IMAP", "POP3"):
        assert [n for n in range(1, 4) if f"Nuevo {n} {name}" in inbox] == [1, 2, 3], inbox
        assert [n for n in range(1, 6) if f"Antiguo {n} {name}" in inbox] == [4, 5], inbox


@proves("000-3.2.append")
def test_mail_to_support_creates_tickets_and_to_jobs_job_applicants(browser_site):
    """«Anexar Correos Electrónicos a Documentos ... cada vez que un email es enviado a
    [email protected], el sitema creará un Ticket para el mismo. De forma similar, si se vincula
    [email protected], cuando se envíen correos a [email protected], se creará un documento de
    Solicitante de Empleo.» The administrator picks «Ticket» and «Solicitante de empleo» in «Anexar
    a»; each mail to support is a ticket on the Tickets page, each to jobs an applicant on the Job
    applicants page (in Spanish), and neither makes the other."""
    site = browser_site
    _company_domain(site)
    store = site.store("Norte")
    support = site.account(store, address=site.mailbox("support"), create_customer_if_not_found=True)
    jobs = site.account(store, address=site.mailbox("jobs"), create_customer_if_not_found=True)
    admin, lucia = site.person("admin", admin=True), site.person("lucia", store=store)
    page = site.page(admin)
    _edit_account(page, support, select={"append_to": "ticket"})
    _edit_account(page, jobs, select={"append_to": "job_applicant"})
    page.goto(f"{ACCOUNTS}{jobs.pk}/edit/")
    assert page.locator("#id_append_to option:checked").inner_text() == "Solicitante de empleo"
    site.customer_writes(support, sender="Ana Pérez <ana@cliente.example>", subject="La silla llegó rota")
    site.customer_writes(support, sender="Beto Gil <beto@cliente.example>", subject="Factura duplicada")
    site.customer_writes(jobs, sender="Carla Ruiz <carla@cliente.example>", subject="Candidatura: dependienta")
    site.sync(support, jobs)

    agent_page = site.page(lucia)
    agent_page.goto("/")
    agent_page.click("#bz-sidebar >> text=Tickets")
    assert agent_page.locator("h1").first.inner_text().strip() == "Tickets"
    tickets = _records(agent_page, "/tickets/")
    assert len(tickets) == 2, tickets
    assert any("La silla llegó rota" in row and "Abierto" in row for row in tickets), tickets
    assert any("Factura duplicada" in row for row in tickets), tickets
    assert not any("Candidatura" in row for row in tickets), tickets
    agent_page.click("#bz-sidebar >> text=Solicitantes de empleo")
    assert agent_page.locator("h1").first.inner_text().strip() == "Solicitantes de empleo"
    applicants = _records(agent_page, "/job-applicants/")
    assert len(applicants) == 1, applicants
    assert "Carla Ruiz" in applicants[0] and "carla@cliente.example" in applicants[0]
    assert "Candidatura: dependienta" in applicants[0]
    browser_support.screenshot(agent_page, "acceptance-000-3.2-job-applicants")


@proves("000-3.2.autolink")
def test_automatic_linking_joins_mail_that_names_its_record(browser_site):
    """«Tildar la opción "Habilitar la vinculación automática en documentos", vinculará los correos a
    documentos.» Ana's ticket is answered; later she writes a new mail (not a reply) with the ticket's
    token from the subject she got, and a web form sends to the ticket's plus address. With the option
    ticked both join her ticket; unticked, the same two mails each start a new ticket."""
    from buzon.crm.models import Ticket
    from buzon.messages import targets

    site = browser_site
    _company_domain(site)
    store = site.store("Norte")
    support = site.account(store, append_to="ticket", create_customer_if_not_found=True)
    admin, lucia = site.person("admin", admin=True), site.person("lucia", store=store)
    admin_page, agent_page = site.page(admin), site.page(lucia)
    _edit_account(admin_page, support, check=("auto_link",))
    site.customer_writes(support, sender="Ana Pérez <ana@cliente.example>", subject="Silla rota")
    site.sync(support)
    _reply_in_browser(agent_page, _received_pk("Silla rota"), "Le enviamos otra silla.")
    (answer,) = site.received()
    token = re.search(r"\[#T-\d+-\w+\]", answer["Subject"])
    assert token, answer["Subject"]
    ticket = Ticket.objects.get()
    plus = targets.plus_address(support.email_address, ticket)  # what an integrator's web form writes to

    def ana_writes_again(label: str) -> None:
        site.customer_writes(support, sender="Ana Pérez <ana@cliente.example>",
                             subject=f"Otra foto {label} {token.group(0)}")
        site.customer_writes(support, raw=customer_mail(to=plus, sender="formulario@tienda.example",
                                                        subject=f"Formulario web {label}"))
        site.sync(support)

    ana_writes_again("con vinculación")
    tickets = _records(agent_page, "/tickets/")
    assert len(tickets) == 1, tickets
    _open_message(agent_page, "Formulario web con vinculación")
    assert agent_page.locator("#record-token").inner_text() == targets.record_token(ticket)
    conversation = _conversation(agent_page)
    assert "Silla rota" in conversation and "Otra foto con vinculación" in conversation, conversation

    _edit_account(admin_page, support, uncheck=("auto_link",))
    ana_writes_again("sin vinculación")
    tickets = _records(agent_page, "/tickets/")
    assert len(tickets) == 3, tickets
    assert any("Otra foto sin vinculación" in row for row in tickets), tickets
    assert any("Formulario web sin vinculación" in row for row in tickets), tickets


@proves("000-3.3")
def test_unreplied_mail_alerts_the_listed_people_once_in_their_language(browser_site, settings):
    """«Si se desea que DiamoERP notifique de un correo que está sin responder por un período de tiempo
    determinado, entonces se puede configurar Notificar si permanece sin responder. Aquí se puede
    configurar el número de minutos de espera antes de enviar notificaciones, y a dónde enviarlas.»

    The administrator sets 30 minutes and two addresses. Ana's mail gets only the auto-reply; Beto's
    gets Lucía's answer. At 29 minutes nobody is alerted; at 31 the two addresses get one alert about
    Ana's conversation (Ana wrote twice: still one), each in its reader's language, with the link to
    it; Beto's is not alerted; an hour later nothing more is sent."""
    site = browser_site
    settings.BASE_URL, settings.BASE_URL_SET = site.live_url, True  # where people open Buzón (BUZON_BASE_URL)
    _company_domain(site)
    store = site.store("Norte")
    support = site.account(store, append_to="ticket", create_customer_if_not_found=True, auto_reply_enabled=True,
                           auto_reply_message="Hemos recibido su mensaje.")
    admin, lucia = site.person("admin", admin=True), site.person("lucia", store=store)
    jefa = site.person("jefa", store=store, language="es")
    boss = site.person("boss", store=store, language="en")
    _edit_account(site.page(admin), support, fill={"notify_unreplied_after_minutes": "30",
                                                   "notify_unreplied_to": f"{jefa.email}, {boss.email}"})
    start = timezone.now()
    first = site.customer_writes(support, sender="Ana Pérez <ana@cliente.example>", subject="Silla rota")
    site.customer_writes(support, sender="Beto Gil <beto@cliente.example>", subject="Factura duplicada")
    site.sync(support)
    first_id = email.message_from_bytes(first, policy=policy.default)["Message-ID"]
    site.customer_writes(support, sender="Ana Pérez <ana@cliente.example>", subject="Re: Silla rota",
                         headers={"In-Reply-To": first_id, "References": first_id})
    site.sync(support)
    auto_replies = [m for m in site.received() if m["Auto-Submitted"] == "auto-replied"]
    assert sorted(str(m["To"]) for m in auto_replies) == ["ana@cliente.example", "beto@cliente.example"]
    _reply_in_browser(site.page(lucia), _received_pk("Factura duplicada"), "La factura buena va adjunta.")

    def scheduler_at(minutes: int) -> str:
        """The workers' scheduler runs `buzon notify_unreplied` with the clock `minutes` after the mail came."""
        out = io.StringIO()
        with freeze_time(start + dt.timedelta(minutes=minutes), real_asyncio=True):
            call_command("notify_unreplied", stdout=out)
        return out.getvalue().strip()

    def alerts() -> dict[str, list[EmailMessage]]:
        found: dict[str, list[EmailMessage]] = {}
        for mail in site.received():
            for address in (jefa.email, boss.email):
                if address in str(mail["To"]):
                    found.setdefault(address, []).append(mail)
        return found

    assert scheduler_at(29) == "0 conversation(s) notified"
    assert alerts() == {}
    assert scheduler_at(31) == "1 conversation(s) notified"
    sent = alerts()
    assert {address: len(mails) for address, mails in sent.items()} == {jefa.email: 1, boss.email: 1}
    ana_message = _received_pk("Silla rota")
    spanish, english = sent[jefa.email][0], sent[boss.email][0]
    assert spanish["Subject"].startswith("Todavía sin respuesta al correo de ana@cliente.example"), spanish["Subject"]
    assert english["Subject"].startswith("No reply yet to the email from ana@cliente.example"), english["Subject"]
    links = set()
    for mail in (spanish, english):
        assert support.email_address in mail["Subject"]
        link = re.search(rf"{re.escape(site.live_url)}/inbox/(\d+)/", _text(mail))
        assert link, _text(mail)
        assert int(link.group(1)) in (ana_message, _received_pk("Re: Silla rota"))
        links.add(link.group(0))
    assert not any("beto@cliente.example" in str(m["Subject"]) for mails in sent.values() for m in mails)
    assert scheduler_at(90) == "0 conversation(s) notified"
    assert {address: len(mails) for address, mails in alerts().items()} == {jefa.email: 1, boss.email: 1}

    # Jefa opens the link in her mail: Ana's conversation. She also finds the alert under the bell.
    page = site.page(jefa)
    (link,) = links
    page.goto(link)
    assert "Silla rota" in page.locator("h1").first.inner_text()
    assert "Silla rota" in _conversation(page)
    page.goto("/notifications/")
    items = [text for text in page.locator("#notification-list a").all_inner_texts() if "sin respuesta" in text]
    assert len(items) == 1 and "ana@cliente.example" in items[0], items
