"""Open a logged-in, encrypted connection to an account's IMAP, POP3 or SMTP server.

Every failure is a MailServerError (see errors.py). The probe, the sync engine and the sender all
open connections here, so TLS, login encoding and timeouts behave the same everywhere.

aioimaplib 2.0.3 notes (read from its source):
- It has no STARTTLS method (the command is only in its table), so `_starttls()` sends the command
  and upgrades the transport with `loop.start_tls()`, then asks for CAPABILITY again (RFC 3501 6.2.1).
- Its `wait_hello_from_server()` treats any greeting containing "OK" (even POP3's "+OK") as IMAP and,
  on any other greeting, fails in a background task while the caller waits forever. `_Protocol`
  checks the greeting itself and reports the outcome on a future.
- Its per-command timeout is only `asyncio.wait_for`; the whole opening is bounded here instead, so
  a server that accepts TCP and never answers is a ConnectTimeout after `timeout` seconds.
- LOGIN quotes the password but sends the user name raw; it is quoted here.

Every opener resolves the server name through guard.py and connects to a checked address (TLS still
verifies the certificate against the name); `probe=True` also limits the port to mail ports.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import poplib
import smtplib
import ssl
from collections.abc import Callable

import aioimaplib
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from buzon.core.tls import client_context
from buzon.mailboxes import guard, tls_first
from buzon.mailboxes.endpoints import ServerSettings
from buzon.mailboxes.errors import (
    AuthenticationFailed,
    ConfigurationError,
    MailServerError,
    ProtocolError,
    TLSHandshakeError,
    classify,
)
from buzon.mailboxes.oauth_login import imap_oauth, oauth_mechanism, pop3_oauth
from buzon.mailboxes.pinned import POP3, POP3_SSL, SMTP, SMTP_SSL

SECURITY_MODES = ("ssl", "starttls", "none")


@functools.lru_cache(maxsize=8)
def _shared_context(verify: bool, ca_file: str) -> ssl.SSLContext:
    return client_context(verify)


def tls_context(verify: bool) -> ssl.SSLContext:
    """One shared context per (verify, CA file): building one loads the whole CA bundle, ~120 ms and
    ~0.8 MB here, which 1,000 idling accounts would otherwise pay 1,000 times. Contexts are safe to
    share between connections and threads."""
    return _shared_context(verify, str(getattr(settings, "TLS_CA_FILE", "") or ""))


def credentials(s: ServerSettings) -> tuple[bytes, bytes]:
    """Login name and password as the bytes the server receives: UTF-8, or ASCII when the account asks."""
    if s.oauth_token:
        return s.username.encode("utf-8"), b""
    if s.ascii_password:
        try:
            return s.username.encode("ascii"), s.password.encode("ascii")
        except UnicodeEncodeError:
            raise ConfigurationError(
                _("The password or login name contains characters that are not ASCII, but the account is set "
                  "to send them ASCII-encoded. Turn that option off or change the password."),
                host=s.host, port=s.port, protocol=s.protocol, detail="non-ASCII password with ascii_password on",
            ) from None
    return s.username.encode("utf-8"), s.password.encode("utf-8")


def _check(s: ServerSettings, protocol: str, probe: bool) -> None:
    if s.protocol != protocol:
        raise ConfigurationError(_("This account's server is not a %(protocol)s server.") % {"protocol": protocol},
                                 host=s.host, port=s.port, protocol=s.protocol, detail=f"expected {protocol}")
    if s.security not in SECURITY_MODES:
        raise ConfigurationError(_("Unknown security mode “%(mode)s”.") % {"mode": s.security},
                                 host=s.host, port=s.port, protocol=s.protocol)
    if not s.host:
        raise ConfigurationError(_("No server is set for this account."), protocol=s.protocol)
    if probe:
        guard.check_port(s.host, s.port, s.protocol)


# ---------------------------------------------------------------------------------------------- IMAP
class _Protocol(aioimaplib.IMAP4ClientProtocol):
    """aioimaplib's protocol, plus a future that settles once the greeting is understood (or not)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_lost_cb: Callable[[Exception | None], None] | None = None):
        super().__init__(loop, conn_lost_cb)
        self.greeted: asyncio.Future[None] = loop.create_future()

    def _settle(self, error: BaseException | None) -> None:
        if self.greeted.done():
            return
        if error is None:
            self.greeted.set_result(None)
        else:
            self.greeted.set_exception(error)

    async def welcome(self, command: bytes) -> None:
        if not command.startswith((b"* OK", b"* PREAUTH")):
            text = command[:200].decode("utf-8", "replace")
            self._settle(ProtocolError(stage="greeting", detail=f"unexpected greeting: {text}"))
            return
        try:
            await super().welcome(command)
        except Exception as exc:  # noqa: BLE001 - reported to the waiting opener, not lost in a task
            self._settle(exc)
            return
        self._settle(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._settle(exc or ConnectionResetError("the server closed the connection"))


class _IMAP4(aioimaplib.IMAP4):
    protocol: _Protocol

    def create_client(self, host: str, port: int, loop: asyncio.AbstractEventLoop | None,
                      conn_lost_cb: Callable[[Exception | None], None] | None = None,
                      ssl_context: ssl.SSLContext | None = None) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _Protocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(self._pinned_connection(local_loop, host, port, ssl_context))

    async def _pinned_connection(self, loop: asyncio.AbstractEventLoop, host: str, port: int,
                                 ssl_context: ssl.SSLContext | None) -> None:
        """Connect to a checked address of `host` (guard.py); TLS still verifies the name."""
        addresses = await guard.resolve_async(host, port, "imap")
        error: OSError | None = None
        for address in addresses:
            try:
                await loop.create_connection(lambda: self.protocol, address, port, ssl=ssl_context,
                                             server_hostname=host if ssl_context is not None else None)
                return
            except OSError as exc:
                error = exc
        assert error is not None  # noqa: S101 - resolve_async never returns an empty list
        raise error

    async def connected(self, host: str, deadline: float | None = None) -> None:
        """Connected and greeted. With a `deadline` (loop time; an unencrypted start), a port that
        turns out to expect TLS at once is TLSHandshakeError("tls_expected") (see tls_first)."""
        await self._client_task
        greeted = self.protocol.greeted
        if deadline is None:
            await greeted
            return
        loop = asyncio.get_running_loop()
        done, _ = await asyncio.wait([greeted], timeout=min(tls_first.GREETING_GRACE, deadline - loop.time()))
        if not done:
            address, port = self.protocol.transport.get_extra_info("peername")[:2]  # type: ignore[union-attr]
            if await asyncio.to_thread(tls_first.speaks_tls, address, port, host, deadline - loop.time()) \
                    and not greeted.done():
                raise tls_first.tls_expected(host, port)
        await greeted

    def abandon(self) -> None:
        """Drop the connection without a LOGOUT (used after a failure)."""
        # The greeting's outcome no longer matters: retrieve it so asyncio does not log it as lost.
        self.protocol.greeted.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._client_task.cancel()
        transport = self.protocol.transport
        if transport is not None:
            transport.close()


async def _starttls(client: _IMAP4, s: ServerSettings) -> None:
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise TLSHandshakeError(reason="starttls_unsupported", detail="no STARTTLS in CAPABILITY")
    response = await protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop))
    if response.result != "OK":
        raise TLSHandshakeError(detail=f"STARTTLS answered {response.result}")
    transport = await protocol.loop.start_tls(
        protocol.transport, protocol, tls_context(s.tls_verify), server_hostname=s.host  # type: ignore[arg-type]
    )
    protocol.transport = transport  # type: ignore[assignment]
    await protocol.capability()  # capabilities learned before TLS must be forgotten


async def _imap_login(client: _IMAP4, s: ServerSettings) -> None:
    if client.protocol.state == aioimaplib.AUTH:  # PREAUTH greeting
        return
    if s.oauth_token:
        await imap_oauth(client, s)
        return
    if "LOGINDISABLED" in client.protocol.capabilities:
        raise TLSHandshakeError(reason="tls_required", detail="LOGINDISABLED")
    username, password = credentials(s)
    # aioimaplib sends str as UTF-8; ASCII-only credentials were checked above, so the bytes match.
    response = await client.login(aioimaplib.quoted(username.decode()), password.decode())
    if response.result != "OK":
        text = b" ".join(line for line in response.lines if isinstance(line, bytes)).decode("utf-8", "replace")
        raise AuthenticationFailed(detail=f"LOGIN {response.result}: {text}"[:300])


async def open_imap(s: ServerSettings, *, timeout: float, probe: bool = False) -> aioimaplib.IMAP4:
    """A connected, TLS-secured (per `s.security`), logged-in aioimaplib client; the caller logs out."""
    _check(s, "imap", probe)
    credentials(s)
    context = tls_context(s.tls_verify) if s.security == "ssl" else None
    stage = "connect"
    client: _IMAP4 | None = None
    try:
        async with asyncio.timeout(timeout):
            deadline = asyncio.get_running_loop().time() + timeout
            client = _IMAP4(host=s.host, port=s.port, timeout=timeout, ssl_context=context)
            await client.connected(s.host, deadline if context is None else None)
            if s.security == "starttls":
                stage = "starttls"
                await _starttls(client, s)
            stage = "login"
            await _imap_login(client, s)
        return client
    except BaseException as exc:
        if client is not None:
            client.abandon()
        if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
            raise
        error = classify(exc, s, stage)
        if error.code == "timeout":
            error.timeout = timeout
        raise error from exc


# ---------------------------------------------------------------------------------------------- POP3
def open_pop3(s: ServerSettings, *, timeout: float, probe: bool = False) -> poplib.POP3:
    """A connected, TLS-secured, logged-in poplib client (POP3_SSL, or POP3 + STLS); the caller QUITs."""
    _check(s, "pop3", probe)
    username, password = credentials(s)
    stage = "connect"
    client: poplib.POP3 | None = None
    try:
        if s.security == "ssl":
            client = POP3_SSL(s.host, s.port, timeout=timeout, context=tls_context(s.tls_verify))
        else:
            client = POP3(s.host, s.port, timeout=timeout)
            if s.security == "starttls":
                stage = "starttls"
                client.stls(context=tls_context(s.tls_verify))
        stage = "login"
        if s.oauth_token:
            pop3_oauth(client, s)
            return client
        # poplib encodes commands as UTF-8; passing latin-1-decoded bytes sends them unchanged.
        client.encoding = "latin-1"
        client.user(username.decode("latin-1"))
        client.pass_(password.decode("latin-1"))
        client.encoding = "UTF-8"
        return client
    except Exception as exc:
        _close_quietly(client)
        raise _classified(exc, s, stage, timeout) from exc


# ---------------------------------------------------------------------------------------------- SMTP
def _smtp_login(client: smtplib.SMTP, s: ServerSettings) -> None:
    """AUTH PLAIN or LOGIN with the account's encoding (smtplib's own login() only sends ASCII)."""
    username, password = credentials(s)
    client.ehlo_or_helo_if_needed()
    if not client.has_extn("auth"):
        if s.security == "none" and client.has_extn("starttls"):
            raise TLSHandshakeError(reason="tls_required", detail="AUTH is only offered after STARTTLS")
        raise ProtocolError(reason="no_auth", detail="the server does not offer AUTH")
    mechanisms = client.esmtp_features["auth"].upper().split()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    if s.oauth_token:
        mechanism, sasl = oauth_mechanism(s, set(mechanisms))
        code, reply = client.docmd("AUTH", f"{mechanism} {b64(sasl)}")
        if code == 334:  # the error report (RFC 7628 3.2.3); an empty answer ends the exchange
            code, reply = client.docmd("")
    elif "PLAIN" in mechanisms:
        code, reply = client.docmd("AUTH", "PLAIN " + b64(b"\0" + username + b"\0" + password))
    elif "LOGIN" in mechanisms:
        code, reply = client.docmd("AUTH", "LOGIN " + b64(username))
        if code == 334:
            code, reply = client.docmd(b64(password))
    else:
        raise ProtocolError(reason="no_auth", detail=f"no supported AUTH mechanism in {mechanisms}")
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, reply)


def open_smtp(s: ServerSettings, *, timeout: float, probe: bool = False) -> smtplib.SMTP:
    """A connected SMTP client: implicit TLS, STARTTLS or plain per `s.security`; logged in if `s.auth`."""
    _check(s, "smtp", probe)
    credentials(s)
    stage = "connect"
    client: smtplib.SMTP | None = None
    try:
        if s.security == "ssl":
            client = SMTP_SSL(s.host, s.port, timeout=timeout, context=tls_context(s.tls_verify))
        else:
            client = SMTP(s.host, s.port, timeout=timeout)
        client.ehlo()
        if s.security == "starttls":
            stage = "starttls"
            if not client.has_extn("starttls"):
                raise TLSHandshakeError(reason="starttls_unsupported", detail="no STARTTLS in EHLO")
            client.starttls(context=tls_context(s.tls_verify))
            client.ehlo()
        if s.auth:
            stage = "login"
            _smtp_login(client, s)
        return client
    except Exception as exc:
        _close_quietly(client)
        raise _classified(exc, s, stage, timeout) from exc


def _classified(exc: BaseException, s: ServerSettings, stage: str, timeout: float) -> MailServerError:
    error = classify(exc, s, stage)
    if error.code == "timeout" and error.reason != "unreachable":
        error.timeout = timeout
    return error


def _close_quietly(client: poplib.POP3 | smtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        client.close()
    except OSError:
        pass
