"""Helpers for the mailboxes tests: server settings pointing at the test servers."""

from __future__ import annotations

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
