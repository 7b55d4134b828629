"""Handing messages to SMTP servers: a pool of logged-in connections per account, reused across messages.

Connections come from `mailboxes.connections.open_smtp` (TLS, STARTTLS, AUTH and their errors are
handled there, once for the whole project). Each account may hold up to
`OUTBOUND_CONNECTIONS_PER_ACCOUNT` connections, used by a thread each, so a slow link (20 ms round
trips) is filled by parallel transactions. Each connection carries one transaction at a time, and
the sender's `gate` is called (and must commit the message as "sending") before the transaction
starts: that is what bounds duplicates after a crash (see queue.py).

Where the server offers PIPELINING (RFC 2920), MAIL FROM, every RCPT TO and DATA go out in one
write and their replies are read together, so a message costs two round trips instead of 3 + one
per recipient. smtplib has no pipelining; the commands are written with its `send()` and the
replies read with its `getreply()`, on the connection it opened. Where the server announces SIZE
(RFC 1870), a message larger than its limit is failed before anything is sent, and MAIL FROM
declares the size so a server can refuse early.

A message naming an address with a non-ASCII local part (see addresses.py) goes with the SMTPUTF8
parameter (RFC 6531) and its commands in UTF-8 where the server offers SMTPUTF8; where it does not,
the message is failed before anything is sent, naming the address: no retry could change that.

An idle connection the server has closed is noticed before any of the message is written, so it
is replaced and the message tried on a fresh one without any risk of sending it twice. A rejected
login (535) fails the message with the reason in plain words and is remembered for
`LOGIN_REFUSED_HOLD_S`, so the rest of the queue for that account fails at once instead of
logging in again and again with a wrong password (servers lock accounts that do that).
"""

from __future__ import annotations

import re
import smtplib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from buzon.mailboxes.connections import open_smtp
from buzon.mailboxes.endpoints import ServerSettings, smtp_settings
from buzon.mailboxes.errors import AuthenticationFailed, MailServerError, classify
from buzon.mailboxes.models import EmailAccount
from buzon.outbound.addresses import is_bare, no_smtputf8_text

IDLE_S = 60.0  # close connections unused this long (servers drop idle clients after a few minutes)
LOGIN_REFUSED_HOLD_S = 300.0  # how long a refused login fails the account's mail without trying again
# Called with the message's bytes before its transaction starts; False: do not send this message.
Gate = Callable[[bytes], bool]
# A message's bytes, or what makes them, called in the connection's thread before its transaction
# (compose.Composed.content: the DKIM signature's RSA step, which runs without holding the GIL).
Content = bytes | Callable[[], bytes]


@dataclass(frozen=True)
class SendOutcome:
    """What the server made of one message. `reply` is the server's words, or ours for a lost connection."""

    sent: bool
    permanent: bool = False
    code: int | None = None
    reply: str = ""
    refused: dict[str, str] = field(default_factory=dict)  # recipients refused while others were accepted
    skipped: bool = False  # the gate said no: nothing was sent and there is nothing to record


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


class StaleConnection(smtplib.SMTPServerDisconnected):
    """The connection failed before any of the message's content was written: trying again is safe."""


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _size_refusal(client: smtplib.SMTP, size: int) -> SendOutcome | None:
    """RFC 1870: a message over the server's announced limit would only be refused after its upload."""
    limit = client.esmtp_features.get("size", "").strip()
    if not limit.isdigit() or int(limit) == 0 or size <= int(limit):
        return None
    text = _("The message is %(size)s, larger than the %(limit)s the server accepts. Send smaller attachments, "
             "or links to the files.") % {"size": filesizeformat(size), "limit": filesizeformat(int(limit))}
    return SendOutcome(sent=False, permanent=True, code=552, reply=text)


def _smtputf8_refusal(client: smtplib.SMTP, utf8_addresses: Sequence[str]) -> SendOutcome | None:
    """RFC 6531: only a server offering SMTPUTF8 may be given an address with a non-ASCII local part."""
    if not utf8_addresses or client.has_extn("smtputf8"):
        return None
    server = str(getattr(client, "_host", "") or "") or _("the server")
    return SendOutcome(sent=False, permanent=True, reply=no_smtputf8_text(utf8_addresses, server))


def _path(address: str) -> str:
    """<address> as smtplib.quoteaddr writes it, without parsing what is already a bare address."""
    return f"<{address}>" if is_bare(address) else smtplib.quoteaddr(address)


def _envelope(client: smtplib.SMTP, envelope_from: str, recipients: list[str], size: int, smtputf8: bool,
              ) -> tuple[tuple[int, bytes], list[tuple[int, bytes]], tuple[int, bytes]]:
    """MAIL FROM, RCPT TO each, DATA: pipelined in one write where the server allows it."""
    options = [f"SIZE={size}"] if client.has_extn("size") else []
    if smtputf8:
        options.append("SMTPUTF8")
    if client.has_extn("pipelining"):
        commands = [f"MAIL FROM:{_path(envelope_from)}{''.join(' ' + o for o in options)}",
                    *(f"RCPT TO:{_path(r)}" for r in recipients), "DATA"]
        # ASCII unless SMTPUTF8 was checked to be offered (then the addresses may be UTF-8, RFC 6531 3.3).
        client.send("".join(c + "\r\n" for c in commands).encode("utf-8" if smtputf8 else "ascii"))
        mail = client.getreply()
        rcpts = [client.getreply() for _r in recipients]
        return mail, rcpts, client.getreply()
    mail = client.mail(envelope_from, options)  # with SMTPUTF8, smtplib sends the commands as UTF-8
    if mail[0] != 250:
        return mail, [], (0, b"")
    rcpts = [client.rcpt(r) for r in recipients]
    if not any(code in (250, 251) for code, _reply in rcpts):
        return mail, rcpts, (0, b"")
    return mail, rcpts, client.docmd("DATA")


def transmit(client: smtplib.SMTP, envelope_from: str, recipients: list[str], data: bytes,
             gate: Gate | None = None, utf8_addresses: Sequence[str] = ()) -> SendOutcome:
    """One SMTP transaction on an open connection. Raises StaleConnection if the connection failed
    before the content was written, and smtplib/OS errors if it failed later. `utf8_addresses`:
    the addresses that need SMTPUTF8 (compose.Composed.utf8_addresses)."""
    if not recipients:
        return SendOutcome(sent=False, permanent=True, reply=_("The message has no recipients."))
    refusal = _size_refusal(client, len(data)) or _smtputf8_refusal(client, utf8_addresses)
    if refusal is not None:
        return refusal
    if gate is not None and not gate(data):
        return SendOutcome(sent=False, skipped=True)
    try:
        mail, rcpts, data_reply = _envelope(client, envelope_from, recipients, len(data), bool(utf8_addresses))
    except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
        raise StaleConnection(str(exc)) from exc
    refused = {r: _text(code, reply) for r, (code, reply) in zip(recipients, rcpts, strict=False)
               if code not in (250, 251)}
    if mail[0] != 250 or len(refused) == len(recipients) or data_reply[0] != 354:
        if data_reply[0] == 354:  # DATA accepted with nobody to deliver to: end it empty (RFC 2920 3.1)
            client.send(b".\r\n")
            client.getreply()
        client.rset()
        if mail[0] != 250:
            return _refusal(mail[0], mail[1], _("the sender address"))
        if len(refused) == len(recipients):
            # One deferred recipient makes the whole refusal worth retrying.
            code, reply = min(rcpts, key=lambda r: (r[0] >= 500, r[0]))
            return _refusal(code, reply, _("every recipient"))
        return _refusal(data_reply[0], data_reply[1], _("the message"))
    content = _LEADING_DOT.sub(b"..", data)
    client.send(content + (b"" if content.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    code, reply = client.getreply()
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
        self._refused_logins: dict[tuple[int, ServerSettings], tuple[float, SendOutcome]] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=self.per_account * 4, thread_name_prefix="smtp")
        self.opened = 0  # connections opened so far (tests check reuse with it)

    def submit(self, account: EmailAccount, envelope_from: str, recipients: list[str], data: Content,
               server: ServerSettings | None = None, gate: Gate | None = None,
               utf8_addresses: Sequence[str] = ()) -> Future[SendOutcome]:
        server = server or smtp_settings(account)
        return self._executor.submit(self._send, (account.pk, server), envelope_from, recipients, data, gate,
                                     tuple(utf8_addresses))

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
            self.opened += 1  # under the lock: the pool's threads (and a worker's slots) open at once
        return open_smtp(key[1], timeout=self.timeout), False

    def _checkin(self, key: tuple[int, ServerSettings], client: smtplib.SMTP) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append((client, time.monotonic()))

    def _login_refused(self, key: tuple[int, ServerSettings]) -> SendOutcome | None:
        with self._lock:
            refused = self._refused_logins.get(key)
        if refused is None or time.monotonic() - refused[0] > LOGIN_REFUSED_HOLD_S:
            return None
        return refused[1]

    def _refuse_login(self, key: tuple[int, ServerSettings], exc: MailServerError) -> SendOutcome:
        outcome = SendOutcome(sent=False, permanent=True, code=535, reply=_(
            "%(reason)s The message was not sent. Correct the account's password, then send the message "
            "again (requeue it).") % {"reason": exc.message()})
        with self._lock:
            self._refused_logins[key] = (time.monotonic(), outcome)
        return outcome

    def _send(self, key: tuple[int, ServerSettings], envelope_from: str, recipients: list[str],
              data: Content, gate: Gate | None = None, utf8_addresses: Sequence[str] = ()) -> SendOutcome:
        if callable(data):  # before taking a connection: no connection waits while it is made
            data = data()
        with self._slot(key):
            refused = self._login_refused(key)
            if refused is not None:  # the same password was refused moments ago: do not try it again
                return refused
            for _try in range(2):
                try:
                    client, reused = self._checkout(key)
                except AuthenticationFailed as exc:
                    return self._refuse_login(key, exc)
                except MailServerError as exc:
                    return SendOutcome(sent=False, reply=exc.message())
                try:
                    outcome = transmit(client, envelope_from, recipients, data, gate, utf8_addresses)
                except StaleConnection as exc:
                    client.close()
                    # A reused connection the server dropped while idle: nothing was delivered, go again
                    # (the gate already let this message through: it is not asked twice).
                    if reused and _try == 0:
                        gate = None
                        continue
                    return SendOutcome(sent=False, reply=classify(exc.__cause__ or exc, key[1], "send").message())
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
    """One pool per process, so connections survive from one task run to the next (and the worker's
    slots share its connections; its lock and per-account semaphores make that safe)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SMTPPool()
        return _shared


def send_now(account: EmailAccount, envelope_from: str, recipients: list[str], data: bytes,
             utf8_addresses: Sequence[str] = ()) -> SendOutcome:
    """Send one message right away on its own connection (sender confirmation). Raises on any failure."""
    server = smtp_settings(account)
    client = open_smtp(server, timeout=settings.OUTBOUND_SMTP_TIMEOUT_S)
    try:
        outcome = transmit(client, envelope_from, recipients, data, utf8_addresses=utf8_addresses)
    except (smtplib.SMTPException, OSError) as exc:
        raise classify(exc, server, "send") from exc
    finally:
        _close(client)
    if not outcome.sent:
        raise SendFailed(outcome)
    return outcome
