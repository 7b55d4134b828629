"""smtplib and poplib clients that connect only to addresses mailboxes.guard has checked.

The standard clients resolve the server name themselves inside `_get_socket` / `_create_socket`.
These subclasses resolve through the guard and connect to a checked address instead; the name is
kept for TLS (SMTP_SSL, POP3_SSL, STARTTLS and STLS all verify the certificate against it).
The mixins sit between the SSL class and its plain base in the MRO, so the SSL classes' own
wrapping (with `server_hostname`) still runs on top of the pinned socket.
"""

from __future__ import annotations

import poplib
import smtplib
import socket

from buzon.mailboxes import guard


class SMTP(smtplib.SMTP):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return guard.connect(guard.resolve(host, port, "smtp"), port, timeout)


class SMTP_SSL(smtplib.SMTP_SSL, SMTP):  # noqa: N801 - named like the class it stands for
    pass


class POP3(poplib.POP3):
    def _create_socket(self, timeout: float) -> socket.socket:
        return guard.connect(guard.resolve(self.host, self.port, "pop3"), self.port, timeout)


class POP3_SSL(poplib.POP3_SSL, POP3):  # noqa: N801
    pass
