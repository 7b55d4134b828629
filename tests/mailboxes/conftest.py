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
    server.cleanup()
