"""A real SMTP server (aiosmtpd) for tests: AUTH, STARTTLS or implicit TLS, and faults on demand."""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.certs import TestCerts
from tests.support.ports import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


@dataclass
class SinkHandler:
    """Keeps every accepted message; `fail_next` makes the next DATA (or RCPT) answer a fault."""

    messages: list[Received] = field(default_factory=list)
    fail_data: list[str] = field(default_factory=list)  # e.g. "451 4.3.0 Try again later"
    fail_rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        reply = self.fail_rcpt.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            if self.fail_data:
                return self.fail_data.pop(0)
            login = session.auth_data if isinstance(session.auth_data, str) else None
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.original_content or envelope.content), login))
        return "250 2.0.0 Message accepted for delivery"


@dataclass
class PipeliningHandler(SinkHandler):
    """The sink, announcing PIPELINING (aiosmtpd reads commands in order, so it can take them) and
    keeping each transaction's MAIL FROM parameters; `refuse_sender` answers 550 to that sender."""

    refuse_sender: str = ""
    mail_options: list[list[str]] = field(default_factory=list)

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        if self.refuse_sender and address == self.refuse_sender:
            return "550 5.7.1 Sender not allowed"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        self.mail_options.append(list(mail_options))
        return "250 OK"


@dataclass
class SlowHandler(SinkHandler):
    """A relay that takes `delay_s` to answer each message's DATA (other connections go on meanwhile);
    `receiving` is set once a message's DATA has arrived and is being held."""

    delay_s: float = 8.0
    receiving: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.receiving.set()
        await asyncio.sleep(self.delay_s)
        return await super().handle_DATA(server, session, envelope)


class _Authenticator:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(login) == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)


class SMTPServer:
    """mode: "plain" (no TLS), "starttls" (TLS offered, required before AUTH) or "ssl" (implicit TLS)."""

    def __init__(self, certs: TestCerts, mode: str = "starttls", users: dict[str, str] | None = None,
                 require_auth: bool = True, handler: SinkHandler | None = None) -> None:
        self.mode = mode
        self.users = dict(users or {})
        self.handler = handler or SinkHandler()
        self.port = free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(certs.cert_file), str(certs.key_file))
        kwargs: dict[str, Any] = {
            "authenticator": _Authenticator(self.users),
            "auth_required": require_auth,
            # aiosmtpd does not see implicit TLS as TLS; the connection is encrypted all the same.
            "auth_require_tls": mode == "starttls",
            "hostname": "localhost",
        }
        if mode == "starttls":
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
        controller_kwargs: dict[str, Any] = {}
        if mode == "ssl":
            controller_kwargs["ssl_context"] = context
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     server_kwargs=kwargs, **controller_kwargs)

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
