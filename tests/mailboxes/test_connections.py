"""Opening IMAP, POP3 and SMTP connections against real servers, and every way it can fail.

Coroutines run through probe.run_async, not asyncio.run: another test's fixture (Playwright's
sync API) can leave an event loop marked as running on this worker's main thread.
"""

from __future__ import annotations

import ssl
import time

import pytest

from buzon.mailboxes import errors
from buzon.mailboxes.connections import open_imap, open_pop3, open_smtp
from buzon.mailboxes.probe import run_async
from tests.mailboxes.conftest import TIMEOUT, settings_for
from tests.support.ports import free_port


def imap(s):
    async def run():
        client = await open_imap(s, timeout=TIMEOUT)
        response = await client.examine("INBOX")
        await client.logout()
        return response.result

    return run_async(run)


def pop3(s):
    client = open_pop3(s, timeout=TIMEOUT)
    try:
        return client.stat()
    finally:
        client.quit()


def smtp(s):
    client = open_smtp(s, timeout=TIMEOUT)
    try:
        return client.noop()[0]
    finally:
        client.quit()


# --- success, every security mode ---------------------------------------------------------------
@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
def test_imap_logs_in(dovecot, mail_user, security):
    port = dovecot.imaps_port if security == "ssl" else dovecot.imap_port
    assert imap(settings_for("imap", port, security=security, username=mail_user)) == "OK"


@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
def test_pop3_logs_in(dovecot, mail_user, security):
    dovecot.deliver(mail_user, b"Subject: one\r\n\r\nbody\r\n")
    port = dovecot.pop3s_port if security == "ssl" else dovecot.pop3_port
    count, _size = pop3(settings_for("pop3", port, security=security, username=mail_user))
    assert count == 1


def test_smtp_ssl_logs_in(smtp_ssl):
    s = settings_for("smtp", smtp_ssl.port, security="ssl", username="sender@example.test", password="smtp-secret")
    assert smtp(s) == 250


def test_smtp_starttls_logs_in(smtp_starttls):
    s = settings_for("smtp", smtp_starttls.port, security="starttls", username="sender@example.test",
                     password="smtp-secret")
    assert smtp(s) == 250


def test_smtp_plain_logs_in(smtp_plain):
    s = settings_for("smtp", smtp_plain.port, security="none", username="sender@example.test",
                     password="smtp-secret")
    assert smtp(s) == 250


def test_utf8_password_is_sent_as_utf8(dovecot, smtp_plain):
    user = dovecot.add_user(password="pässwörd")
    assert imap(settings_for("imap", dovecot.imaps_port, username=user, password="pässwörd")) == "OK"
    assert pop3(settings_for("pop3", dovecot.pop3s_port, username=user, password="pässwörd"))[0] == 0
    smtp_plain.users["sender@example.test"] = "pässwörd"
    assert smtp(settings_for("smtp", smtp_plain.port, security="none", username="sender@example.test",
                             password="pässwörd")) == 250


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_ascii_password_refuses_non_ascii(protocol):
    s = settings_for(protocol, 1, username="u", password="contraseña", ascii_password=True)
    opener = {"imap": imap, "pop3": pop3, "smtp": smtp}[protocol]
    with pytest.raises(errors.ConfigurationError) as caught:
        opener(s)
    assert "ASCII" in caught.value.message()
    assert "contraseña" not in str(caught.value)


def test_ascii_password_logs_in_when_ascii(dovecot, mail_user):
    assert imap(settings_for("imap", dovecot.imaps_port, username=mail_user, ascii_password=True)) == "OK"


# --- failures ---------------------------------------------------------------------------------
OPENERS = {"imap": imap, "pop3": pop3, "smtp": smtp}


def fail(s) -> errors.MailServerError:
    with pytest.raises(errors.MailServerError) as caught:
        OPENERS[s.protocol](s)
    return caught.value


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_unknown_host(protocol):
    error = fail(settings_for(protocol, 993, host="no-such-server.invalid", username="u"))
    assert isinstance(error, errors.DNSError)
    assert "no-such-server.invalid" in error.message()


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_connection_refused(protocol):
    port = free_port()
    error = fail(settings_for(protocol, port, host="127.0.0.1", username="u", security="none"))
    assert isinstance(error, errors.ConnectionRefused)
    assert str(port) in error.message() and "127.0.0.1" in error.message()


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
@pytest.mark.parametrize("security", ["ssl", "none"])
def test_silent_server_is_a_timeout(silent_server, protocol, security):
    s = settings_for(protocol, silent_server.port, host="127.0.0.1", security=security, username="u",
                     tls_verify=False)
    started = time.monotonic()
    with pytest.raises(errors.ConnectTimeout) as caught:
        if protocol == "imap":
            run_async(lambda: open_imap(s, timeout=1.5))
        elif protocol == "pop3":
            open_pop3(s, timeout=1.5)
        else:
            open_smtp(s, timeout=1.5)
    elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 3.0
    assert "1.5 seconds" in caught.value.message()


def test_ssl_to_plain_port_is_a_tls_error(dovecot, mail_user, smtp_plain):
    for s in (settings_for("imap", dovecot.imap_port, username=mail_user),
              settings_for("pop3", dovecot.pop3_port, username=mail_user),
              settings_for("smtp", smtp_plain.port, username="sender@example.test")):
        error = fail(s)
        assert isinstance(error, errors.TLSHandshakeError), (s, error)
        assert error.help_slug == "tls-handshake"


def test_starttls_where_not_offered_is_a_tls_error(smtp_plain):
    error = fail(settings_for("smtp", smtp_plain.port, security="starttls", username="sender@example.test",
                              password="smtp-secret"))
    assert isinstance(error, errors.TLSHandshakeError)
    assert error.reason == "starttls_unsupported"


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_certificate_for_another_host(dovecot, mail_user, protocol, security):
    ports = {("imap", "ssl"): dovecot.imaps_port, ("imap", "starttls"): dovecot.imap_port,
             ("pop3", "ssl"): dovecot.pop3s_port, ("pop3", "starttls"): dovecot.pop3_port}
    s = settings_for(protocol, ports[(protocol, security)], host="127.0.0.1", security=security, username=mail_user)
    error = fail(s)
    assert isinstance(error, errors.CertificateError)
    assert error.reason == "wrong_host"
    # The same server with verification explicitly off works (self-signed servers opt out).
    opened = OPENERS[protocol](settings_for(protocol, s.port, host="127.0.0.1", security=security,
                                            username=mail_user, tls_verify=False))
    assert opened


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_smtp_certificate_for_another_host(smtp_ssl, smtp_starttls, security):
    port = smtp_ssl.port if security == "ssl" else smtp_starttls.port
    error = fail(settings_for("smtp", port, host="127.0.0.1", security=security, username="sender@example.test",
                              password="smtp-secret"))
    assert isinstance(error, errors.CertificateError) and error.reason == "wrong_host"


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_untrusted_ca(dovecot, mail_user, smtp_ssl, settings, tmp_path, protocol):
    from tests.support.certs import make_certs

    other = make_certs(tmp_path / "other")
    settings.TLS_CA_FILE = str(other.ca_file)  # a CA that did not sign the servers' certificate
    port = {"imap": dovecot.imaps_port, "pop3": dovecot.pop3s_port, "smtp": smtp_ssl.port}[protocol]
    user, password = (mail_user, "secret") if protocol != "smtp" else ("sender@example.test", "smtp-secret")
    error = fail(settings_for(protocol, port, username=user, password=password))
    assert isinstance(error, errors.CertificateError)
    assert error.reason in ("unknown_issuer", "self_signed")
    # Verification explicitly off: the same server is usable (the opt-out for self-signed servers).
    assert OPENERS[protocol](settings_for(protocol, port, username=user, password=password, tls_verify=False))


def test_imap_without_starttls(tmp_path):
    from tests.mailboxes.scripted_imap import ScriptedIMAP

    with ScriptedIMAP(b"* OK fake IMAP ready") as server:
        error = fail(settings_for("imap", server.port, host="127.0.0.1", security="starttls", username="u"))
    assert isinstance(error, errors.TLSHandshakeError) and error.reason == "starttls_unsupported"
    assert not any(b"LOGIN" in command for command in server.commands)  # no password in the clear


def test_imap_login_disabled_without_tls():
    from tests.mailboxes.scripted_imap import ScriptedIMAP

    with ScriptedIMAP(b"* OK ready", capabilities=b"IMAP4rev1 LOGINDISABLED") as server:
        error = fail(settings_for("imap", server.port, host="127.0.0.1", security="none", username="u"))
    assert isinstance(error, errors.TLSHandshakeError) and error.reason == "tls_required"
    assert not any(b"LOGIN" in command for command in server.commands)


def test_imap_bye_greeting_is_a_protocol_error():
    from tests.mailboxes.scripted_imap import ScriptedIMAP

    with ScriptedIMAP(b"* BYE too many connections from your IP") as server:
        error = fail(settings_for("imap", server.port, host="127.0.0.1", security="none", username="u"))
    assert isinstance(error, errors.ProtocolError) and "too many connections" in error.detail


def test_imap_preauth_needs_no_login():
    from tests.mailboxes.scripted_imap import ScriptedIMAP

    with ScriptedIMAP(b"* PREAUTH welcome back") as server:
        assert imap_open_only(settings_for("imap", server.port, host="127.0.0.1", security="none", username="u"))
    assert not any(b"LOGIN" in command for command in server.commands)


def imap_open_only(s):
    async def run():
        client = await open_imap(s, timeout=TIMEOUT)
        await client.logout()
        return True

    return run_async(run)


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_wrong_password(dovecot, smtp_ssl, protocol):
    user = dovecot.add_user()
    port = {"imap": dovecot.imaps_port, "pop3": dovecot.pop3s_port, "smtp": smtp_ssl.port}[protocol]
    s = settings_for(protocol, port, username=user if protocol != "smtp" else "sender@example.test",
                     password="wrong-pw")
    error = fail(s)
    assert isinstance(error, errors.AuthenticationFailed), (s, error)
    assert "wrong-pw" not in str(error) and "wrong-pw" not in error.detail
    assert error.stage == "login"


def test_a_failed_login_does_not_slow_the_next_one(dovecot, mail_user):
    # The test Dovecot runs without its auth penalty, so wrong-password tests cannot slow others.
    fail(settings_for("imap", dovecot.imaps_port, username=mail_user, password="wrong"))
    started = time.monotonic()
    assert imap(settings_for("imap", dovecot.imaps_port, username=mail_user)) == "OK"
    assert time.monotonic() - started < 1.0


def test_wrong_protocol_is_a_protocol_error(dovecot, mail_user, smtp_plain):
    cases = [
        settings_for("imap", smtp_plain.port, security="none", username=mail_user),  # IMAP against SMTP
        settings_for("imap", dovecot.pop3_port, security="none", username=mail_user),  # IMAP against POP3
        settings_for("pop3", dovecot.imap_port, security="none", username=mail_user),  # POP3 against IMAP
        settings_for("smtp", dovecot.imap_port, security="none", username="u"),  # SMTP against IMAP
    ]
    for s in cases:
        started = time.monotonic()
        error = fail(s)
        assert isinstance(error, errors.ProtocolError), (s, error)
        assert time.monotonic() - started < 1.5  # recognised at once, not after the timeout
        assert s.protocol.upper() in error.message()


def test_smtp_login_offered_only_after_starttls(smtp_starttls):
    # The STARTTLS server only offers AUTH after TLS: logging in in the clear cannot work.
    error = fail(settings_for("smtp", smtp_starttls.port, security="none", username="sender@example.test",
                              password="smtp-secret"))
    assert isinstance(error, errors.TLSHandshakeError) and error.reason == "tls_required"
    assert "STARTTLS" in error.message()


def test_smtp_server_without_auth():
    from aiosmtpd.controller import Controller

    from tests.support.smtpd import SinkHandler

    port = free_port()
    relay = Controller(SinkHandler(), hostname="127.0.0.1", port=port)
    relay.start()
    try:
        error = fail(settings_for("smtp", port, host="127.0.0.1", security="none", username="u", password="p"))
        assert isinstance(error, errors.ProtocolError) and error.reason == "no_auth"
        assert "SMTP AUTH" in error.message()
        # Without a login it is usable, which is what the message advises.
        assert smtp(settings_for("smtp", port, host="127.0.0.1", security="none", username="", password="",
                                 auth=False)) == 250
    finally:
        relay.stop()


def test_tls_contexts_are_shared(settings, tmp_path):
    from buzon.mailboxes.connections import tls_context
    from tests.support.certs import make_certs

    assert tls_context(True) is tls_context(True)
    assert tls_context(False) is not tls_context(True)
    assert tls_context(False).verify_mode == ssl.CERT_NONE
    before = tls_context(True)
    settings.TLS_CA_FILE = str(make_certs(tmp_path / "other").ca_file)
    assert tls_context(True) is not before  # a new CA file is picked up
