"""Helpers for the mailboxes tests: server settings pointing at the test servers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from buzon.mailboxes.endpoints import ServerSettings
from tests.support.silent import SilentServer

TIMEOUT = 2.0


def settings_for(protocol: str, port: int, *, host: str = "localhost", security: str = "ssl",
                 username: str = "", password: str = "secret", tls_verify: bool = True,
                 ascii_password: bool = False, auth: bool = True) -> ServerSettings:
    return ServerSettings(protocol=protocol, host=host, port=port, security=security, tls_verify=tls_verify,
                          username=username, password=password, ascii_password=ascii_password, auth=auth)


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


@pytest.fixture
def mail_user(dovecot) -> str:
    return dovecot.add_user()


@pytest.fixture
def fresh_dovecot(test_certs):
    """A private Dovecot for tests that fail logins on purpose.

    Dovecot's anvil delays every login from an IP for seconds after a failed one; on the shared
    server that delay would land on whichever test logs in next.
    """
    from tests.support import dovecot as dovecot_support
    from tests.support.services import require

    require(dovecot_support.available(), "Dovecot (Debian packages dovecot-imapd, dovecot-pop3d)")
    server = dovecot_support.Dovecot(certs=test_certs).start()
    yield server
    # Stopping Dovecot waits ~3 s for its master to exit; nothing needs that to finish before the
    # next test, and the interpreter still waits for this (non-daemon) thread at exit.
    threading.Thread(target=server.cleanup, name="dovecot-cleanup").start()


@pytest.fixture(autouse=True)
def _short_probe_timeout(settings):
    settings.PROBE_TIMEOUT_S = TIMEOUT


@pytest.fixture
def ticket_target():
    """Register "ticket" as a mail target for the test, as the inbound app will."""
    from buzon.crm.models import Ticket
    from buzon.messages import targets

    registered = targets.get_target("ticket") is None
    if registered:
        targets.register(Ticket, key="ticket", prefix="T", label="Ticket")
    yield "ticket"
    if registered:
        targets.unregister("ticket")


@pytest.fixture
def example_domain(db, dovecot, smtp_starttls):
    """example.test: IMAP on the shared Dovecot (SSL), SMTP on aiosmtpd (STARTTLS)."""
    from buzon.mailboxes.models import EmailDomain

    return EmailDomain.objects.create(
        domain_name="example.test", incoming_protocol="imap", incoming_host="localhost",
        incoming_port=dovecot.imaps_port, incoming_security="ssl", smtp_host="localhost",
        smtp_port=smtp_starttls.port, smtp_security="starttls",
    )


@pytest.fixture
def new_account(dovecot, smtp_starttls, example_domain):
    """Make an unsaved account on example.test whose IMAP and SMTP logins both work (password "secret")."""
    from buzon.mailboxes.models import EmailAccount

    def make(incoming=True, outgoing=False, **fields):
        address = dovecot.add_user()
        smtp_starttls.users[address] = "secret"
        return EmailAccount(email_address=address, incoming_enabled=incoming, outgoing_enabled=outgoing, **fields)

    return make
