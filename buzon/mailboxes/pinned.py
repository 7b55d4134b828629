"""smtplib and poplib clients that connect only to addresses mailboxes.guard has checked.

The standard clients resolve the server name themselves inside `_get_socket` / `_create_socket`.
These subclasses resolve through the guard and connect to a checked address instead; the name is
kept for TLS (SMTP_SSL, POP3_SSL, STARTTLS and STLS all verify the certificate against it).
SMTP_SSL wraps the pinned socket itself (its `_get_socket` calls super()); POP3_SSL calls
poplib.POP3 by name, so it wraps here, as poplib does, with `server_hostname`.

The unencrypted ones (no encryption, or STARTTLS later) wait for the greeting through
tls_first.await_greeting, so a port that expects TLS at once is named as such within a second.
"""

from __future__ import annotations

import poplib
import smtplib
import socket
import ssl

from buzon.mailboxes import guard
from buzon.mailboxes.tls_first import await_greeting


class SMTP(smtplib.SMTP):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = guard.connect(guard.resolve(host, port, "smtp"), port, timeout)
        if not isinstance(self, smtplib.SMTP_SSL) and isinstance(timeout, int | float):
            _greeted(sock, host, timeout)
        return sock


class SMTP_SSL(smtplib.SMTP_SSL, SMTP):  # noqa: N801 - named like the class it stands for
    pass


class POP3(poplib.POP3):
    def _create_socket(self, timeout: float) -> socket.socket:
        sock = guard.connect(guard.resolve(self.host, self.port, "pop3"), self.port, timeout)
        if isinstance(timeout, int | float):
            _greeted(sock, self.host, timeout)
        return sock


def _greeted(sock: socket.socket, host: str, timeout: float) -> None:
    """The server's greeting is waiting to be read (see tls_first); else the socket is closed."""
    try:
        await_greeting(sock, host, timeout)
    except BaseException:
        sock.close()
        raise


class POP3_SSL(poplib.POP3_SSL):  # noqa: N801
    # poplib.POP3_SSL calls poplib.POP3._create_socket by name (not super()), so no mixin here.
    context: ssl.SSLContext  # set by poplib.POP3_SSL.__init__ (typeshed leaves it out)

    def _create_socket(self, timeout: float) -> socket.socket:
        sock = guard.connect(guard.resolve(self.host, self.port, "pop3"), self.port, timeout)
        return self.context.wrap_socket(sock, server_hostname=self.host)
