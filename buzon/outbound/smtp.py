"""Handing messages to SMTP servers: a pool of logged-in connections per account, reused across messages.

Connections come from `mailboxes.connections.open_smtp` (TLS, STARTTLS, AUTH and their errors are
handled there, once for the whole project). Each account may hold up to
`OUTBOUND_CONNECTIONS_PER_ACCOUNT` connections, used by a thread each, so a slow link (20 ms round
trips) is filled by parallel transactions; each connection carries one transaction at a time, which
is what bounds duplicates after a crash (see queue.py). An idle connection the server has closed is
noticed at MAIL FROM, before anything is delivered, so it is replaced and the message retried on a
fresh one without any risk of sending it twice.
"""

from __future__ import annotations

import smtplib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext as _

from buzon.mailboxes.connections import open_smtp
from buzon.mailboxes.endpoints import ServerSettings, smtp_settings
from buzon.mailboxes.errors import MailServerError, classify
from buzon.mailboxes.models import EmailAccount

IDLE_S = 60.0  # close connections unused this long (servers drop idle clients after a few minutes)


@dataclass(frozen=True)
class SendOutcome:
    """What the server made of one message. `reply` is the server's words, or ours for a lost connection."""

    sent: bool
    permanent: bool = False
    code: int | None = None
    reply: str = ""
    refused: dict[str, str] = field(default_factory=dict)  # recipients refused while others were accepted


class SendFailed(Exception):
    def __init__(self, outcome: SendOutcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.reply)


def _text(code: int, reply: bytes | str) -> str:
    words = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {words}".strip()


def _refusal(code: int, reply: bytes | str, what: str) -> SendOutcome:
    """5xx is final (the reply is kept for the user); 4xx and anything odd is worth another try."""
    permanent = 500 <= code < 600
    if permanent:
        text = _("The server refused %(what)s permanently: %(reply)s") % {"what": what, "reply": _text(code, reply)}
    else:
        text = _("The server deferred %(what)s: %(reply)s") % {"what": what, "reply": _text(code, reply)}
    return SendOutcome(sent=False, permanent=permanent, code=code, reply=text)


def transmit(client: smtplib.SMTP, envelope_from: str, recipients: list[str], data: bytes) -> SendOutcome:
    """One SMTP transaction on an open connection. Raises only if the connection itself fails."""
    code, reply = client.mail(envelope_from)
    if code != 250:
        client.rset()
        return _refusal(code, reply, _("the sender address"))
    refused: dict[str, str] = {}
    answer: tuple[int, bytes] = (0, b"")
    for rcpt in recipients:
        code, reply = client.rcpt(rcpt)
        if code not in (250, 251):
            refused[rcpt] = _text(code, reply)
            # One deferred recipient makes the whole refusal worth retrying.
            if answer[0] == 0 or code < 500:
                answer = (code, reply)
    if len(refused) == len(recipients):
        client.rset()
        return _refusal(answer[0], answer[1], _("every recipient"))
    try:
        code, reply = client.data(data)
    except smtplib.SMTPDataError as exc:
        return _refusal(exc.smtp_code, exc.smtp_error, _("the message"))
    if code != 250:
        return _refusal(code, reply, _("the message"))
    return SendOutcome(sent=True, code=code, reply=_text(code, reply), refused=refused)


def _close(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


class SMTPPool:
    """Logged-in connections per (account, server settings), and the threads that use them."""

    def __init__(self, per_account: int | None = None, timeout: float | None = None) -> None:
        self.per_account = per_account or settings.OUTBOUND_CONNECTIONS_PER_ACCOUNT
        self.timeout = timeout or settings.OUTBOUND_SMTP_TIMEOUT_S
        self._idle: dict[tuple[int, ServerSettings], list[tuple[smtplib.SMTP, float]]] = {}
        self._slots: dict[tuple[int, ServerSettings], threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=self.per_account * 4, thread_name_prefix="smtp")
        self.opened = 0  # connections opened so far (tests check reuse with it)

    def submit(self, account: EmailAccount, envelope_from: str, recipients: list[str], data: bytes,
               server: ServerSettings | None = None) -> Future[SendOutcome]:
        server = server or smtp_settings(account)
        return self._executor.submit(self._send, (account.pk, server), envelope_from, recipients, data)

    def _slot(self, key: tuple[int, ServerSettings]) -> threading.BoundedSemaphore:
        with self._lock:
            return self._slots.setdefault(key, threading.BoundedSemaphore(self.per_account))

    def _checkout(self, key: tuple[int, ServerSettings]) -> tuple[smtplib.SMTP, bool]:
        now = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(key, [])
            while idle:
                client, since = idle.pop()
                if now - since < IDLE_S:
                    return client, True
                _close(client)
        self.opened += 1
        return open_smtp(key[1], timeout=self.timeout), False

    def _checkin(self, key: tuple[int, ServerSettings], client: smtplib.SMTP) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append((client, time.monotonic()))

    def _send(self, key: tuple[int, ServerSettings], envelope_from: str, recipients: list[str],
              data: bytes) -> SendOutcome:
        with self._slot(key):
            for _try in range(2):
                try:
                    client, reused = self._checkout(key)
                except MailServerError as exc:
                    return SendOutcome(sent=False, reply=exc.message())
                try:
                    outcome = transmit(client, envelope_from, recipients, data)
                except smtplib.SMTPServerDisconnected as exc:
                    client.close()
                    # A reused connection the server dropped while idle: nothing was delivered, go again.
                    if reused and _try == 0:
                        continue
                    return SendOutcome(sent=False, reply=classify(exc, key[1], "send").message())
                except (smtplib.SMTPException, OSError) as exc:
                    client.close()
                    return SendOutcome(sent=False, reply=classify(exc, key[1], "send").message())
                if outcome.code == 421:  # the server is closing this connection
                    client.close()
                else:
                    self._checkin(key, client)
                return outcome
        return SendOutcome(sent=False, reply=_("The connection to the server was lost."))

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for clients in idle.values():
            for client, _since in clients:
                _close(client)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        self.close_all()


_shared: SMTPPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> SMTPPool:
    """One pool per process, so connections survive from one task run to the next."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SMTPPool()
        return _shared


def send_now(account: EmailAccount, envelope_from: str, recipients: list[str], data: bytes) -> SendOutcome:
    """Send one message right away on its own connection (sender confirmation). Raises on any failure."""
    server = smtp_settings(account)
    client = open_smtp(server, timeout=settings.OUTBOUND_SMTP_TIMEOUT_S)
    try:
        outcome = transmit(client, envelope_from, recipients, data)
    except (smtplib.SMTPException, OSError) as exc:
        raise classify(exc, server, "send") from exc
    finally:
        _close(client)
    if not outcome.sent:
        raise SendFailed(outcome)
    return outcome
