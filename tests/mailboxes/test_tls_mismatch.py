"""A security mode that does not match the port, named as such and at once, in the web UI's connection test.

Against the real Dovecot (IMAP, IMAPS, POP3, POP3S) and aiosmtpd (implicit TLS, STARTTLS, plain): STARTTLS
or no encryption on a port that expects TLS from the first byte used to wait out the whole timeout (10 s)
and blame a firewall; SSL/TLS on a port that starts unencrypted said only that TLS could not be set up.
Each message also says which connection failed: incoming (IMAP or POP3) or outgoing (SMTP).
"""

from __future__ import annotations

import re
import time
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from buzon.crm.models import Agent, Store
from buzon.crm.roles import SUPERVISOR_GROUP
from buzon.mailboxes.errors import TLSHandshakeError
from buzon.mailboxes.models import EmailAccount

pytestmark = pytest.mark.django_db
TEST = "/settings/email/accounts/test/"

TLS_FIRST = {
    "en": "expects TLS from the first byte: choose SSL/TLS instead of {chosen}.",
    "es": "espera TLS desde el primer byte: elija SSL/TLS en lugar de {chosen}.",
}
CHOSEN = {("en", "starttls"): "STARTTLS", ("es", "starttls"): "STARTTLS",
          ("en", "none"): "no encryption", ("es", "none"): "conectar sin cifrado"}
PLAIN_FIRST = {
    "en": "answered without encryption, so it does not expect TLS from the first byte: choose STARTTLS instead "
          "of SSL/TLS.",
    "es": "respondió sin cifrado, así que no espera TLS desde el primer byte: elija STARTTLS en lugar de SSL/TLS.",
}
SERVICE = {("en", "imap"): "Incoming mail (IMAP): ", ("es", "imap"): "Correo entrante (IMAP): ",
           ("en", "pop3"): "Incoming mail (POP3): ", ("es", "pop3"): "Correo entrante (POP3): ",
           ("en", "smtp"): "Outgoing mail (SMTP): ", ("es", "smtp"): "Correo saliente (SMTP): "}


_LOGGED_IN = {"en": "Connected and logged in.", "es": "Conectado y con sesión iniciada."}


@pytest.fixture
def supervisor(db) -> tuple[Client, Store]:
    """Who tests connections with the least rights: a supervisor of one store (not an administrator)."""
    store = Store.objects.create(name="Tienda Centro")
    user = get_user_model().objects.create_user("sofia", password="pw-sofia-long-1")
    user.groups.add(Group.objects.get_or_create(name=SUPERVISOR_GROUP)[0])
    Agent.objects.create(user=user).stores.add(store)
    client = Client()
    client.force_login(user)
    return client, store


def _expected(language: str, protocol: str, port: int, chosen: str) -> str:
    where = {"en": f"The server at port {port} (localhost) ", "es": f"El servidor del puerto {port} (localhost) "}
    text = PLAIN_FIRST[language] if chosen == "ssl" else TLS_FIRST[language].format(chosen=CHOSEN[language, chosen])
    return SERVICE[language, protocol] + where[language] + text


def _rows(html: str) -> dict[str, str]:
    """direction -> the text the connection test shows for it."""
    rows = {}
    for direction, body in re.findall(r'data-direction="(\w+)">(.*?)</div>\s*</div>', html, re.S):
        text = re.search(r"<div>(.*?)(?:<a |$)", body, re.S)
        rows[direction] = unescape(text.group(1) if text else "").strip()
    return rows


def _test_connection(client: Client, store: Store, language: str, address: str, *, incoming: tuple[str, int, str],
                     outgoing: tuple[int, str]) -> tuple[dict[str, str], float]:
    protocol, port, security = incoming
    smtp_port, smtp_security = outgoing
    data = {"email_address": address, "password": "secret", "store": str(store.pk), "incoming_enabled": "on",
            "incoming_protocol": protocol, "incoming_host": "localhost", "incoming_port": str(port),
            "incoming_security": security, "outgoing_enabled": "on", "smtp_host": "localhost",
            "smtp_port": str(smtp_port), "smtp_security": smtp_security, "smtp_auth": "true",
            "sync_option": "all", "initial_sync_count": "250", "tls_verify": "on"}
    started = time.monotonic()
    response = client.post(TEST, data, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE=language)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    return _rows(response.content.decode()), elapsed


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_wrong_security_mode_is_named_within_two_seconds(supervisor, dovecot, smtp_ssl, smtp_starttls, smtp_plain,
                                                         settings, protocol, language):
    settings.PROBE_TIMEOUT_S = 10  # what a site uses: the answer must not wait for it
    client, store = supervisor
    address = dovecot.add_user(password="secret")
    for server in (smtp_ssl, smtp_starttls, smtp_plain):
        server.users[address] = "secret"
    tls_port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port
    plain_port = dovecot.imap_port if protocol == "imap" else dovecot.pop3_port
    # The right modes log in (and the first request's one-time costs are not counted below).
    rows, _ = _test_connection(client, store, language, address, incoming=(protocol, tls_port, "ssl"),
                               outgoing=(smtp_starttls.port, "starttls"))
    assert rows == {"incoming": _LOGGED_IN[language], "outgoing": _LOGGED_IN[language]}
    cases = [
        ((protocol, tls_port, "starttls"), (smtp_ssl.port, "starttls")),
        ((protocol, plain_port, "ssl"), (smtp_starttls.port, "ssl")),
        ((protocol, tls_port, "none"), (smtp_ssl.port, "none")),
        ((protocol, plain_port, "ssl"), (smtp_plain.port, "ssl")),
    ]
    for incoming, outgoing in cases:
        rows, elapsed = _test_connection(client, store, language, address, incoming=incoming, outgoing=outgoing)
        assert rows["incoming"] == _expected(language, protocol, incoming[1], incoming[2]), (incoming, rows)
        assert rows["outgoing"] == _expected(language, "smtp", outgoing[0], outgoing[1]), (outgoing, rows)
        assert elapsed < 2.0, (incoming, outgoing, elapsed)
        assert "firewall" not in str(rows) and "cortafuegos" not in str(rows)
    assert not EmailAccount.objects.filter(email_address=address).exists()  # a test saves nothing


def test_matching_modes_still_log_in_and_a_silent_port_still_times_out(supervisor, dovecot, smtp_ssl, silent_server,
                                                                        settings):
    """The quick check changes nothing where the mode is right, nor for a port where nothing answers."""
    settings.PROBE_TIMEOUT_S = 2
    client, store = supervisor
    address = dovecot.add_user(password="secret")
    smtp_ssl.users[address] = "secret"
    rows, _ = _test_connection(client, store, "en", address, incoming=("imap", dovecot.imap_port, "starttls"),
                               outgoing=(smtp_ssl.port, "ssl"))
    assert rows == {"incoming": "Connected and logged in.", "outgoing": "Connected and logged in."}
    started = time.monotonic()
    rows, _ = _test_connection(client, store, "en", address, incoming=("pop3", silent_server.port, "starttls"),
                               outgoing=(silent_server.port, "none"))
    assert 1.9 <= time.monotonic() - started < 4
    assert rows["incoming"].startswith("Incoming mail (POP3): localhost (port ")
    assert "did not answer within 2 seconds" in rows["incoming"]
    assert rows["outgoing"].startswith("Outgoing mail (SMTP): ") and "did not answer within 2" in rows["outgoing"]


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_the_sync_engine_names_the_mismatch_on_the_account_at_once(dovecot, protocol):
    """The sync opens connections the same way: the account shows the same words, soon."""
    from tests.sync.helpers import make_account, sync

    port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port
    account = make_account(dovecot, protocol=protocol, security="starttls", port=port)
    started = time.monotonic()
    with pytest.raises(TLSHandshakeError):  # `buzon sync --once` stops on it
        sync(account)
    assert time.monotonic() - started < 2.0
    account.refresh_from_db()
    assert account.error_message == _expected("en", protocol, port, "starttls")


@pytest.mark.parametrize(("language", "words"), [("en", "expects TLS from the first byte (993, 995, 465)"),
                                                  ("es", "espera TLS desde el primer byte (993, 995, 465)")])
def test_the_help_page_the_error_links_to_names_the_mismatch(supervisor, language, words):
    client, _store = supervisor
    page = client.get("/help/troubleshooting/tls-handshake/", HTTP_ACCEPT_LANGUAGE=language)
    assert page.status_code == 200 and words in unescape(page.content.decode())
