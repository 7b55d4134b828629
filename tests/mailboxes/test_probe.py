"""probe_account() against real Dovecot and aiosmtpd servers."""

from __future__ import annotations

import pytest
from django.utils import translation

from buzon.mailboxes import errors
from buzon.mailboxes.models import EmailAccount
from buzon.mailboxes.probe import probe_account
from tests.mailboxes.conftest import TIMEOUT
from tests.support.ports import free_port

pytestmark = pytest.mark.django_db


def incoming_account(dovecot, protocol="imap", **fields) -> EmailAccount:
    user = fields.pop("email_address", None) or dovecot.add_user()
    port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port
    account = EmailAccount(email_address=user, incoming_enabled=True, incoming_protocol=protocol,
                           incoming_host="localhost", incoming_port=port, incoming_security="ssl", **fields)
    account.set_password("secret")
    return account


def outgoing_account(smtp, security="ssl", **fields) -> EmailAccount:
    account = EmailAccount(email_address="sender@example.test", outgoing_enabled=True, smtp_host="localhost",
                           smtp_port=smtp.port, smtp_security=security, **{"smtp_auth": True, **fields})
    account.set_password("smtp-secret")
    return account


def test_imap_probe_examines_every_folder(dovecot):
    account = incoming_account(dovecot, folders=["INBOX", "Ventas/Gestión", "Pedidos & Envíos", "Soporte"])
    dovecot.create_folder(account.email_address, "Ventas/Gestión")
    dovecot.create_folder(account.email_address, "Pedidos & Envíos")
    dovecot.deliver(account.email_address, b"Subject: hola\r\n\r\ncuerpo\r\n", folder="Soporte")
    report = probe_account(account, incoming=True, outgoing=False, timeout=TIMEOUT)
    assert report.ok, report
    assert report.incoming.facts["folders"] == {"INBOX": 0, "Ventas/Gestión": 0, "Pedidos & Envíos": 0, "Soporte": 1}
    assert report.outgoing is None


def test_imap_probe_does_not_mark_mail_read(dovecot):
    account = incoming_account(dovecot)
    dovecot.deliver(account.email_address, b"Subject: unread\r\n\r\nbody\r\n")
    assert probe_account(account, outgoing=False, timeout=TIMEOUT).ok
    flags = dovecot.doveadm("fetch", "-u", account.email_address, "flags", "mailbox", "INBOX", "all")
    assert "\\Seen" not in flags


def test_missing_folder_is_named(dovecot):
    account = incoming_account(dovecot, folders=["INBOX", "Facturas"])
    report = probe_account(account, outgoing=False, timeout=TIMEOUT)
    error = report.incoming.error
    assert isinstance(error, errors.FolderMissing)
    assert error.folder == "Facturas"
    assert "“Facturas”" in error.message()
    with translation.override("es"):
        assert "«Facturas»" in error.message() and "carpeta" in error.message()


def test_pop3_probe_counts_messages(dovecot):
    account = incoming_account(dovecot, protocol="pop3")
    dovecot.deliver(account.email_address, b"Subject: one\r\n\r\nbody\r\n")
    report = probe_account(account, outgoing=False, timeout=TIMEOUT)
    assert report.ok and report.incoming.facts["messages"] == 1


def test_both_directions(dovecot, smtp_starttls):
    account = incoming_account(dovecot, email_address=None)
    account.outgoing_enabled = True
    account.smtp_host, account.smtp_port, account.smtp_security = "localhost", smtp_starttls.port, "starttls"
    smtp_starttls.users[account.email_address] = "secret"
    report = probe_account(account, timeout=TIMEOUT)
    assert report.ok, report.errors
    assert report.incoming.server.startswith("imap://localhost:")
    assert "secret" not in report.incoming.server


def test_new_password_is_tried_instead_of_the_stored_one(dovecot):
    account = incoming_account(dovecot)
    account.set_password("old-and-wrong")
    assert probe_account(account, "secret", outgoing=False, timeout=TIMEOUT).ok


def test_wrong_password_on_each_direction(dovecot, smtp_ssl):
    account = incoming_account(dovecot)
    account.set_password("wrong")
    report = probe_account(account, outgoing=False, timeout=TIMEOUT)
    assert isinstance(report.incoming.error, errors.AuthenticationFailed)
    outgoing = outgoing_account(smtp_ssl)
    outgoing.set_password("wrong")
    report = probe_account(outgoing, incoming=False, timeout=TIMEOUT)
    assert isinstance(report.outgoing.error, errors.AuthenticationFailed)
    assert "wrong" not in report.outgoing.error.detail


def test_smtp_without_auth_needs_no_password(test_certs):
    from tests.support.smtpd import SMTPServer

    relay = SMTPServer(test_certs, mode="plain", require_auth=False).start()
    try:
        account = outgoing_account(relay, security="none", smtp_auth=False)
        account.password_encrypted = ""
        report = probe_account(account, incoming=False, timeout=TIMEOUT)
    finally:
        relay.stop()
    assert report.ok, report.errors
    assert report.outgoing.facts == {"auth": False}


def test_no_server_is_a_configuration_error():
    account = EmailAccount(email_address="someone@nowhere.example", incoming_enabled=True, outgoing_enabled=True)
    account.set_password("x")
    report = probe_account(account, timeout=TIMEOUT)
    for error in report.errors:
        assert isinstance(error, errors.ConfigurationError)
        assert "nowhere.example" in error.message()
    assert len(report.errors) == 2


def test_missing_password_is_a_configuration_error(dovecot):
    account = incoming_account(dovecot)
    account.password_encrypted = ""
    error = probe_account(account, outgoing=False, timeout=TIMEOUT).incoming.error
    assert isinstance(error, errors.ConfigurationError) and error.reason == "no_password"


def test_refused_and_messages_in_both_languages():
    account = EmailAccount(email_address="a@example.test", incoming_enabled=True, incoming_protocol="imap",
                           incoming_host="127.0.0.1", incoming_port=free_port(), incoming_security="none")
    account.set_password("x")
    error = probe_account(account, outgoing=False, timeout=TIMEOUT).incoming.error
    assert isinstance(error, errors.ConnectionRefused)
    with translation.override("en"):
        english = error.message()
    with translation.override("es"):
        spanish = error.message()
    assert "refused" in english and "127.0.0.1" in english
    assert "rechazó" in spanish and "127.0.0.1" in spanish and str(account.incoming_port) in spanish


def test_probe_works_inside_a_running_event_loop(dovecot):
    import asyncio
    import threading

    account = incoming_account(dovecot)

    async def from_async_code():
        asyncio.get_running_loop()  # a loop is running here, as in the sync engine
        return probe_account(account, outgoing=False, timeout=TIMEOUT)

    results = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(from_async_code())))
    thread.start()
    thread.join()
    assert results[0].ok
