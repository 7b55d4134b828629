"""002 — Configuración de descarga de correos entrantes: how many accounts, the Incoming fields, how fast
mail arrives, all mail or only mail from now on, and separate mailboxes for sending and receiving.

The administrator works in Chromium in Spanish, the integrator with the API, the customer's mail lands
in a real Dovecot mailbox and what Buzón sends is read at the SMTP server.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
import requests

from buzon.crm.models import Store
from buzon.mailboxes.models import EmailAccount, EmailDomain
from tests.acceptance.conftest import MAILBOX_PASSWORD, PASSWORD, customer_mail
from tests.acceptance.lines import proves
from tests.support import browser as browser_support
from tests.support import live_run
from tests.support.ports import free_port
from tests.support.proxy import Proxy

pytestmark = [pytest.mark.browser]
ACCOUNTS = "/settings/email/accounts/"
SETTING = "BUZON_MAX_INCOMING_ACCOUNTS_PER_STORE"


def _domain(site) -> EmailDomain:
    """The company's email domain, pointed at Dovecot (IMAPS) and the SMTP server."""
    return EmailDomain.objects.create(
        domain_name="example.test", incoming_protocol="imap", incoming_host="localhost",
        incoming_port=site.dovecot.imaps_port, incoming_security="ssl", smtp_host="localhost",
        smtp_port=site.sink.port, smtp_security=site.smtp_security, smtp_auth=True)


def _api(site, token: str, method: str, path: str, **json) -> requests.Response:
    return requests.request(method, site.live_url + path, json=json or None, timeout=60,
                            headers={"Authorization": f"Token {token}", "Accept-Language": "es"})


def _new_incoming_account(page, address: str, store: str) -> None:
    """The administrator's steps on the new-account page, up to (not including) Guardar."""
    page.goto(ACCOUNTS)
    page.click("#new-account")
    page.fill("#id_email_address", address)
    page.fill("#id_password", MAILBOX_PASSWORD)
    page.select_option("#id_store", label=store)
    page.check("#id_incoming_enabled")


def _save(page, address: str) -> None:
    """Guardar, and the account is in the list (else the form's errors are the failure's message)."""
    page.click("#save")
    row = page.locator(f"#account-table [data-account='{address}']")
    errors = page.locator(".invalid-feedback, .alert-danger")
    row.or_(errors.first).wait_for()
    assert row.count() == 1, errors.all_inner_texts()


def _inbox(page) -> str:
    page.goto("/inbox/")
    return page.locator("#inbox-list").inner_text()


@proves("002-2")
def test_no_more_than_ten_incoming_accounts_per_store(browser_site):
    """«No hay más de 10 cuentas de recogida de mensajes disponibles para agregar.» Per store, as the
    setting BUZON_MAX_INCOMING_ACCOUNTS_PER_STORE (10) says: the 11th incoming account of a store is
    refused in the form and in the API, naming the limit and the setting, and nothing is saved; the
    store's accounts cannot be raised past it by editing either; another store still adds its own."""
    site = browser_site
    _domain(site)
    norte, sur = site.store("Norte"), site.store("Sur")
    for _ in range(10):
        site.account(norte)
    sending_only = site.account(norte, incoming=False)
    admin = site.person("admin", admin=True)
    page = site.page(admin)
    address = site.mailbox("once")
    _new_incoming_account(page, address, "Norte")
    store_help = page.locator("#group-store .form-text").inner_text()
    assert "como máximo 10 cuentas entrantes por tienda" in store_help and SETTING in store_help, store_help
    page.click("#save")
    error = page.locator("[data-error-for=store]")
    error.wait_for()
    text = error.inner_text()
    assert "La tienda «Norte» ya tiene 10 cuentas de correo entrante" in text and SETTING in text, text
    browser_support.screenshot(page, "acceptance-002-2-limit")
    assert not EmailAccount.objects.filter(email_address=address).exists()
    # The same account, for the other store: saved (its connection tested against Dovecot first).
    page.select_option("#id_store", label="Sur")
    page.fill("#id_password", MAILBOX_PASSWORD)
    _save(page, address)
    assert EmailAccount.objects.get(email_address=address).store == sur

    token = site.token(admin)
    refused = _api(site, token, "POST", "/api/v1/email-accounts/", email_address=site.mailbox("doce"),
                   password=MAILBOX_PASSWORD, store=norte.pk, incoming_enabled=True)
    assert refused.status_code == 400, refused.text
    assert "10" in refused.json()["store"][0] and SETTING in refused.json()["store"][0], refused.text
    # Not by the back door either: turning incoming on for Norte's sending-only account, or moving
    # Sur's new account to Norte.
    enabling = _api(site, token, "PATCH", f"/api/v1/email-accounts/{sending_only.pk}/", incoming_enabled=True,
                    incoming_host="localhost", incoming_port=site.dovecot.imaps_port, incoming_security="ssl",
                    incoming_protocol="imap")
    moving = _api(site, token, "PATCH", f"/api/v1/email-accounts/{EmailAccount.objects.get(email_address=address).pk}/",
                  store=norte.pk)
    for response in (enabling, moving):
        assert response.status_code == 400 and SETTING in response.json()["store"][0], response.text
    assert EmailAccount.objects.filter(store=norte, incoming_enabled=True).count() == 10
    added = _api(site, token, "POST", "/api/v1/email-accounts/", email_address=site.mailbox("sur"),
                 password=MAILBOX_PASSWORD, store=sur.pk, incoming_enabled=True)
    assert added.status_code == 201, added.text
    assert EmailAccount.objects.filter(store=sur, incoming_enabled=True).count() == 2


#: The Incoming fields of a new account, with the Spanish label the administrator reads.
INCOMING_FIELDS = {
    "incoming_protocol": "Protocolo entrante",
    "incoming_host": "Servidor entrante",
    "incoming_port": "Puerto entrante",
    "incoming_security": "Seguridad entrante",
    "sync_option": "Opción de sincronización de correos",
    "initial_sync_count": "Conteo de sincronización inicial",
    "delete_after_download": "Eliminar los mensajes descargados",
    "create_customer_if_not_found": "Crear cliente si no se encuentra",
    "agent_group": "Grupo de agentes para clientes nuevos",
    "notify_agent": "Notificar al agente",
}


@proves("002-4")
def test_a_new_incoming_account_shows_its_fields_under_incoming(browser_site):
    """«Al crear una nueva cuenta de recogida de mensajes, aparecerá una lista de campos personalizados
    en la pestaña "Entrada".» On the new-account page the Incoming section («Correo entrante») shows its
    own fields, each with its Spanish label and help, once incoming mail is enabled, and not before."""
    from buzon.web.forms import ACCOUNT_GROUPS

    site = browser_site
    admin = site.person("admin", admin=True)
    page = site.page(admin)
    page.goto(ACCOUNTS)
    page.click("#new-account")
    section = page.locator("#section-incoming")
    assert section.locator("h2").inner_text().strip().casefold() == "correo entrante"  # shown in capitals
    incoming = next(names for key, _title, names in ACCOUNT_GROUPS if key == "incoming")
    shown = [name for name in incoming if name != "incoming_enabled"]
    assert set(INCOMING_FIELDS) <= set(shown)
    for name in shown:
        assert section.locator(f"#group-{name}").is_hidden(), f"{name} shown before incoming is enabled"
    section.locator("#id_incoming_enabled").check()
    for name in shown:
        group = section.locator(f"#group-{name}")
        assert group.is_visible(), f"{name} not shown under Incoming"
        label = group.locator("label").first.inner_text().strip()
        if name in INCOMING_FIELDS:
            assert label == INCOMING_FIELDS[name], (name, label)
        help_text = group.locator(".form-text").inner_text().strip()
        assert help_text, f"{name} has no help"
    helps = {name: section.locator(f"#group-{name} .form-text").inner_text() for name in INCOMING_FIELDS}
    assert "a partir de ahora" in helps["sync_option"], helps["sync_option"]
    assert "0 los trae todos" in helps["initial_sync_count"]
    assert "servidor de correo" in helps["delete_after_download"]
    assert "no se importa" in helps["create_customer_if_not_found"], helps["create_customer_if_not_found"]
    assert "libres" in helps["agent_group"], helps["agent_group"]
    options = section.locator("#id_sync_option option").all_inner_texts()
    assert options == ["Todo el correo", "Solo el correo no leído", "Solo los correos recibidos a partir de ahora"]
    assert page.locator("#section-outgoing #group-sync_option").count() == 0
    browser_support.screenshot(page, "acceptance-002-4-incoming-fields")


@proves("002-7")
def test_all_mail_or_only_mail_from_now_on_for_pop3_and_imap(browser_site):
    """«Hay 2 opciones para configurar el protocolo POP: el protocolo está habilitado para todos los
    emails (incluso para las que ya están descargadas) y el protocolo está habilitado para los emails
    recibidos a partir de ese momento.» Buzón's own accounts offer the same choice, for POP3 and IMAP:
    «Todo el correo» brings what the mailbox already holds; «Solo los correos recibidos a partir de
    ahora» leaves it on the server and brings every message that arrives afterwards."""
    site = browser_site
    _domain(site)
    norte = site.store("Norte")
    admin = site.person("admin", admin=True)
    lucia = site.person("lucia", store=norte)
    page = site.page(admin)
    ports = {"pop3": site.dovecot.pop3s_port, "imap": site.dovecot.imaps_port}
    accounts: dict[tuple[str, str], EmailAccount] = {}
    for protocol in ("pop3", "imap"):
        for option, label in (("all", "Todo el correo"), ("new", "Solo los correos recibidos a partir de ahora")):
            address = site.mailbox(f"{protocol}-{option}")
            site.dovecot.deliver(address, customer_mail(to=address, subject=f"Antiguo {protocol} {option}"))
            _new_incoming_account(page, address, "Norte")
            page.select_option("#id_incoming_protocol", protocol)
            page.fill("#id_incoming_host", "localhost")
            page.fill("#id_incoming_port", str(ports[protocol]))
            page.select_option("#id_incoming_security", "ssl")
            page.select_option("#id_sync_option", label=label)
            _save(page, address)
            accounts[(protocol, option)] = EmailAccount.objects.get(email_address=address, sync_option=option)
    site.sync(*accounts.values())
    agent = site.page(lucia)
    text = _inbox(agent)
    for protocol in ("pop3", "imap"):
        assert f"Antiguo {protocol} all" in text, text
        assert f"Antiguo {protocol} new" not in text, text
    for (protocol, option), account in accounts.items():
        site.customer_writes(account, subject=f"Nuevo {protocol} {option}")
    site.sync(*accounts.values())
    text = _inbox(agent)
    for (protocol, option), account in accounts.items():
        assert f"Nuevo {protocol} {option}" in text, text
        # Left out is not lost: the message from before is still in the mailbox, for any mail program.
        assert f"Antiguo {protocol} {option}" in [m["Subject"] for m in site.on_server(account.email_address)]
    assert "Antiguo pop3 new" not in text and "Antiguo imap new" not in text
    browser_support.screenshot(agent, "acceptance-002-7-inbox")
    # The integrator has the same choice, and a value that is not one of them is refused, naming it.
    token = site.token(admin)
    made = _api(site, token, "POST", "/api/v1/email-accounts/", email_address=site.mailbox("api"),
                password=MAILBOX_PASSWORD, store=norte.pk, incoming_enabled=True, incoming_protocol="pop3",
                incoming_host="localhost", incoming_port=ports["pop3"], incoming_security="ssl", sync_option="new")
    assert made.status_code == 201 and made.json()["sync_option"] == "new", made.text
    wrong = _api(site, token, "PATCH", f"/api/v1/email-accounts/{made.json()['id']}/", sync_option="desde-ahora")
    assert wrong.status_code == 400 and "sync_option" in wrong.json(), wrong.text


def _answer_address(mail) -> str:
    """Where a customer's mail program sends «Responder» (RFC 5322 3.6.3): Reply-To, else From."""
    return (mail["Reply-To"] or mail["From"]).addresses[0].addr_spec


@proves("002-8")
def test_one_mailbox_receives_and_another_sends(browser_site):
    """«Puedes especificar diferentes buzones de correo en el sistema para enviar correo saliente y
    descargar correo entrante.» Store Norte receives at one mailbox (incoming only) and sends from
    another (outgoing only): the customer's mail arrives through the first, the agent's reply leaves
    through the second, and the customer's answer to it comes back into the same ticket. Another
    store's mailbox is the site's default incoming account: the answer must not go there."""
    site = browser_site
    sur = site.store("Sur")
    site.account(sur, create_customer_if_not_found=True)  # the first account: the site's defaults
    norte = site.store("Norte")
    entrada = site.account(norte, outgoing=False, display_name="Pedidos Norte", append_to="ticket",
                           create_customer_if_not_found=True)
    salida = site.account(norte, incoming=False, display_name="Tienda Norte")
    lucia = site.person("lucia", store=norte)
    site.customer_writes(entrada, sender="Ana Pérez <ana@cliente.example>", subject="Talla equivocada",
                         body="Me llegó una talla M y pedí la L.")
    site.sync(entrada)
    page = site.page(lucia)
    _inbox(page)
    page.locator("#inbox-list a", has_text="Talla equivocada").first.click()
    page.click("#reply")
    page.fill("#id_text", "Le enviamos la talla L hoy mismo.")
    page.click("#send")
    page.wait_for_load_state()
    (sent,) = site.received()
    assert sent["From"].addresses[0].addr_spec == salida.email_address
    assert [a.addr_spec for a in sent["To"].addresses] == ["ana@cliente.example"]
    assert "Le enviamos la talla L" in sent.get_body(("plain",)).get_content()
    home = _answer_address(sent)
    assert home == entrada.email_address, home
    # Ana answers from her mail program; it lands where her «Responder» sends it.
    answer = customer_mail(to=home, sender="Ana Pérez <ana@cliente.example>", subject=f"Re: {sent['Subject']}",
                           body="¡Gracias! Quedo a la espera.", message_id=make_msgid(domain="cliente.example"),
                           headers={"In-Reply-To": sent["Message-ID"], "References": sent["Message-ID"]})
    site.dovecot.deliver(home, answer)
    site.sync(*EmailAccount.objects.filter(incoming_enabled=True))
    page.goto("/inbox/")
    page.locator("#inbox-list a", has_text="Re: ").first.click()
    conversation = page.locator(".card", has_text="Conversación").inner_text()
    assert conversation.count("Talla equivocada") == 3, conversation  # Ana's mail, the reply, her answer
    assert "Quedo a la espera" in page.locator("#message-text").inner_text()
    record = page.locator("#record-token").inner_text()
    assert re.fullmatch(r"\[?#?T-\d+.*", record), record
    browser_support.screenshot(page, "acceptance-002-8-conversation")
    assert not Store.objects.get(pk=sur.pk).email_accounts.filter(raw_messages__subject__contains="Quedo").exists()


# --- 002-5: `buzon run` as a site runs it -----------------------------------------------------------
HISTORY = 300  # messages already in the mailbox the first download brings
_ADMIN = f"""
from django.contrib.auth import get_user_model
get_user_model().objects.create_superuser("admin", "admin@tienda.example", {PASSWORD!r})
"""


def _buzon(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "buzon.core.cli", *args], cwd=live_run.ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextmanager
def _buzon_run(env: dict[str, str], log: Path) -> Iterator[str]:
    """`buzon run` (web, worker, sync engine) until the block ends; yields its address once /readyz."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "buzon.core.cli", "run", "--port", str(port)],
                                cwd=live_run.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _until(lambda: _ready(base), 120, "buzon run ready (/readyz)")
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _ready(base: str) -> bool:
    try:
        answer = requests.get(f"{base}/readyz", timeout=5)
        return answer.status_code == 200 and answer.json().get("ready") is True
    except requests.RequestException:
        return False


def _until(predicate: Callable[[], Any], seconds: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {seconds} s: {what}")


def _listed(api: requests.Session, base: str, subject: str) -> dict[str, Any] | None:
    """The message as the integrator's API lists it, once the pipeline has processed it."""
    page = api.get(f"{base}/api/v1/messages/", timeout=10).json()
    rows = page["results"] if isinstance(page, dict) else page
    return next((row for row in rows if row["subject"] == subject and row["status"] == "processed"), None)


def _account_row(api: requests.Session, base: str, address: str) -> dict[str, Any]:
    listed = api.get(f"{base}/api/v1/email-accounts/?limit=100", timeout=10).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    return next(row for row in rows if row["email_address"] == address)


def _stored(database: Path, address: str) -> int:
    with sqlite3.connect(database, timeout=10) as db:
        (count,) = db.execute("SELECT count(*) FROM sync_rawmessage WHERE account_address = ? "
                              "AND status != 'unfetched'", (address,)).fetchone()
    return int(count)


@pytest.mark.slow
@pytest.mark.timeout(900)
@proves("002-5")
def test_mail_arrives_in_seconds_and_the_first_download_shows_its_progress(dovecot, chromium, tmp_path):
    """«Ten en cuenta que los correos electrónicos tardan unos 15 minutos en cargarse normalmente. Los
    tiempos de carga pueden variar según la carga del servidor. La descarga inicial de emails puede llevar
    mucho tiempo, desde 4 horas o más (dependiendo del número de cartas).» Buzón, as `buzon run` starts
    it (web, worker and the sync engine, which waits on IMAP IDLE): a customer's mail delivered to Dovecot
    is listed, processed, by the API within seconds (10 at most; the time is printed); and the first
    download of a mailbox holding 300 messages shows its progress (done of total) on the account's
    status in the administrator's browser while it runs, then completes. That mailbox is reached through
    a proxy adding 20 ms of round trip, as a mail server across a network is (POP3: a round trip per
    message), so the download lasts long enough to be watched."""
    history = dovecot.add_user(f"historial-{uuid.uuid4().hex[:8]}@example.test", MAILBOX_PASSWORD)
    for index in range(HISTORY):
        dovecot.deliver(history, customer_mail(to=history, sender=f"cliente{index}@cliente.example",
                                               subject=f"Pedido antiguo {index}"))
    shop = dovecot.add_user(f"tienda-{uuid.uuid4().hex[:8]}@example.test", MAILBOX_PASSWORD)
    proxy = Proxy(dovecot.pop3s_port, latency_s=0.02).start()
    ports = (dovecot.imaps_port, dovecot.pop3s_port, proxy.port)
    env = live_run.run_env(tmp_path, BUZON_PROBE_ALLOWED_PORTS=",".join(map(str, ports)),
                           BUZON_CA_FILE=os.environ["BUZON_CA_FILE"])
    store = live_run.prepare(env)  # the store "Tienda Norte" (and an agent of it)
    _buzon(env, "shell", "-c", _ADMIN)
    token = _buzon(env, "token", "admin").strip().splitlines()[-1].split()[-1]
    try:
        with _buzon_run(env, tmp_path / "run.log") as base:
            api = requests.Session()
            api.headers.update({"Authorization": f"Token {token}", "Accept-Language": "es"})
            domain = api.post(f"{base}/api/v1/email-domains/", timeout=60, json={
                "domain_name": "example.test", "incoming_protocol": "imap", "incoming_host": "localhost",
                "incoming_port": dovecot.imaps_port, "incoming_security": "ssl"})
            assert domain.status_code == 201, domain.text
            # 1. The integrator adds the shop's mailbox (IMAPS); once its first sync is done, a customer writes.
            made = api.post(f"{base}/api/v1/email-accounts/", timeout=60, json={
                "email_address": shop, "password": MAILBOX_PASSWORD, "store": store, "incoming_enabled": True,
                "create_customer_if_not_found": True})
            assert made.status_code == 201, made.text
            account_url = f"{base}/api/v1/email-accounts/{made.json()['id']}/"
            _until(lambda: api.get(account_url, timeout=10).json()["last_synced_at"], 60, "the first sync", 0.2)
            subject = "¿Dónde está mi pedido?"
            delivered = time.monotonic()
            dovecot.deliver(shop, customer_mail(to=shop, subject=subject))
            row = _until(lambda: _listed(api, base, subject), 60, "the mail listed, processed, by the API")
            seconds = time.monotonic() - delivered
            print(f"\n002-5: mail delivered to Dovecot -> listed and processed by the API in {seconds:.2f} s")
            assert seconds < 10, f"{seconds:.1f} s"
            assert row["customer"] is not None

            # 2. The administrator adds the mailbox with the history and watches its first download.
            page = browser_support.new_page(chromium, base, locale="es-ES")
            browser_support.sign_in(page, "admin", PASSWORD)
            page.goto(ACCOUNTS)
            page.click("#new-account")
            page.fill("#id_email_address", history)
            page.fill("#id_password", MAILBOX_PASSWORD)
            page.select_option("#id_store", label="Tienda Norte")
            page.check("#id_incoming_enabled")
            page.select_option("#id_incoming_protocol", "pop3")
            page.fill("#id_incoming_host", "localhost")
            page.fill("#id_incoming_port", str(proxy.port))
            page.select_option("#id_incoming_security", "ssl")
            page.fill("#id_initial_sync_count", "0")  # all of it
            started = time.monotonic()
            _save(page, history)
            cell = page.locator(f"#account-table [data-account='{history}'] .bz-status")
            seen: list[tuple[int, int]] = []
            finished_at = asked_at = 0.0
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:  # what the administrator sees, without reloading the page
                text = cell.inner_text()
                shown = re.search(r"(\d+) de (\d+) mensajes", text)
                if shown:
                    done, total = int(shown.group(1)), int(shown.group(2))
                    if (done, total) not in seen:
                        seen.append((done, total))
                        if len(seen) == 1:
                            browser_support.screenshot(page, "acceptance-002-5-first-download")
                elif seen and "En espera" in text:
                    break
                if not finished_at and time.monotonic() - asked_at > 1:  # done, as the API says?
                    asked_at = time.monotonic()
                    mine = _account_row(api, base, history)
                    if mine["last_synced_at"] and mine["progress"] is None:
                        finished_at = time.monotonic()
                if finished_at and time.monotonic() - finished_at > 6:  # two polls of the page since
                    break
                time.sleep(0.25)
            took = time.monotonic() - started
            page.context.close()
            print(f"002-5: first download of {HISTORY} messages: {took:.1f} s; progress shown: {seen}")
            assert any(total == HISTORY and 0 < done < HISTORY for done, total in seen), seen
            assert "En espera" in text and "mensajes" not in text, text
            assert _stored(tmp_path / "buzon.sqlite3", history) == HISTORY
            mine = _account_row(api, base, history)
            assert mine["last_synced_at"] and mine["progress"] is None and mine["state"] == "idle", mine
    finally:
        proxy.stop()
