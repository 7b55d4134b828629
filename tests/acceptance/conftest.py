"""A small business on real servers, for the acceptance suite: two stores, their mailboxes on Dovecot, an
SMTP server that keeps what it receives, agents who sign in with a password, and Chromium.

Tests arrange what an administrator already did (accounts, stores, agents) through `Site`, then act as
the line's user would: a customer's mail lands in the mailbox on Dovecot and Buzón syncs it (the sync
engine's own pass), an agent works in Chromium, an integrator calls the API with a token from
`buzon token`. Background work runs through Django's task API with the immediate backend, so a
queued pipeline or delivery runs when it is queued, by the same code a worker runs; lines where
timing matters start `buzon run`'s processes instead.
"""

from __future__ import annotations

import email
import imaplib
import io
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connections

from buzon.crm.models import Agent, AgentGroup, Store
from buzon.crm.roles import SUPERVISOR_GROUP
from buzon.mailboxes.models import AccountState, EmailAccount
from buzon.outbound import confirm
from tests.support import browser as browser_support
from tests.support.dovecot import Dovecot
from tests.support.smtpd import SMTPServer

PASSWORD = "Clave-de-prueba-2026"  # noqa: S105 - the agents' test password
MAILBOX_PASSWORD = "buzon-secreto"  # noqa: S105 - the mailboxes' password on Dovecot and the SMTP sink
_numbers = itertools.count(1)


def customer_mail(*, sender: str = "Ana Pérez <ana@cliente.example>", to: str, subject: str = "Mi pedido",
                  body: str = "Hola, quiero cambiar la dirección de entrega.", cc: str = "",
                  message_id: str | None = None, headers: dict[str, str] | None = None) -> bytes:
    """A customer's plain mail, as their mail program writes it (CRLF, UTF-8)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    if cc:
        msg["Cc"] = cc
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = message_id or make_msgid(domain="cliente.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)


@dataclass
class Site:
    dovecot: Dovecot
    sink: SMTPServer
    live_url: str
    chromium: Any = None
    stores: dict[str, Store] = field(default_factory=dict)
    _pages: list[Any] = field(default_factory=list)

    # --- what the administrator set up ---------------------------------------------------------
    def store(self, name: str) -> Store:
        if name not in self.stores:
            self.stores[name] = Store.objects.create(name=name, email=f"{name.lower()}@tienda.example")
        return self.stores[name]

    def mailbox(self, local: str | None = None) -> str:
        """A new mailbox on Dovecot (and a login on the SMTP server), e.g. soporte-3@example.test."""
        address = self.dovecot.add_user(f"{local or 'buzon'}-{next(_numbers)}@example.test", MAILBOX_PASSWORD)
        self.sink.users[address] = MAILBOX_PASSWORD
        return address

    def account(self, store: Store | None = None, *, address: str | None = None, incoming: bool = True,
                outgoing: bool = True, protocol: str = "imap", security: str = "ssl", **fields: Any) -> EmailAccount:
        """An account on Dovecot (IMAPS by default) and the SMTP server, as the admin saved it."""
        address = address or self.mailbox()
        port = {("imap", "ssl"): self.dovecot.imaps_port, ("imap", "starttls"): self.dovecot.imap_port,
                ("pop3", "ssl"): self.dovecot.pop3s_port, ("pop3", "starttls"): self.dovecot.pop3_port}
        values: dict[str, Any] = {
            "email_address": address, "display_name": "Soporte", "store": store, "state": AccountState.IDLE,
            "incoming_enabled": incoming, "incoming_protocol": protocol, "incoming_host": "localhost",
            "incoming_port": port[(protocol, security)], "incoming_security": security, "initial_sync_count": 0,
            "outgoing_enabled": outgoing, "smtp_host": "localhost", "smtp_port": self.sink.port,
            "smtp_security": self.smtp_security, "smtp_auth": True,
        }
        values.update(fields)
        account = EmailAccount(**values)
        account.set_password(MAILBOX_PASSWORD)
        for direction in ("incoming", "outgoing"):
            # As saving one in the product does (000-intro.3): the first account of a direction is its
            # default, so notifications and bulk mail have an account to leave through.
            default = f"default_{direction}"
            if account.enabled_for(direction) and not EmailAccount.objects.filter(**{default: True}).exists():
                setattr(account, default, True)
        account.save()
        if outgoing:
            confirm.mark_confirmed(account)
        return account

    def person(self, username: str, *, store: Store | None = None, status: str = Agent.Status.FREE,
               group: AgentGroup | None = None, supervisor: bool = False, admin: bool = False,
               language: str = "") -> User:
        user = User.objects.create_user(username, email=f"{username}@tienda.example", password=PASSWORD,
                                        is_staff=admin, is_superuser=admin)
        if admin and store is None and group is None:
            return user
        agent = Agent.objects.create(user=user, status=status)
        if store is not None:
            agent.stores.add(store)
        if group is not None:
            agent.groups.add(group)
        if supervisor:
            user.groups.add(Group.objects.get_or_create(name=SUPERVISOR_GROUP)[0])
        if language:
            from buzon.core import language as user_language

            user_language.choose(user, language)
        return user

    def group(self, name: str, store: Store | None = None) -> AgentGroup:
        return AgentGroup.objects.create(name=name, store=store)

    @property
    def smtp_security(self) -> str:
        """The account setting that matches the SMTP server's mode."""
        return {"plain": "none"}.get(self.sink.mode, self.sink.mode)

    # --- the other side: customers, the mail server ---------------------------------------------
    def customer_writes(self, account: EmailAccount, raw: bytes | None = None, **mail: Any) -> bytes:
        """The customer's mail lands in the account's INBOX on Dovecot."""
        raw = raw if raw is not None else customer_mail(to=account.email_address, **mail)
        self.dovecot.deliver(account.email_address, raw)
        return raw

    def sync(self, *accounts: EmailAccount) -> str:
        """One pass of the sync engine over the accounts (as `buzon sync --once`); with immediate
        tasks the pipeline has run on what it stored when this returns."""
        from buzon.sync import enqueue
        from buzon.sync.once import sync_once

        # In a thread of its own: Playwright's sync API keeps an event loop marked running in this one.
        out, failure = io.StringIO(), []

        def run() -> None:
            try:
                # async_to_sync from a plain thread: the engine's database jobs run in this thread,
                # on its own connection, closed below.
                async_to_sync(sync_once)([account.pk for account in accounts], out)
                enqueue.window.flush()  # arrivals wait up to 200 ms to go as one task: send them now
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                failure.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=120)
        if failure:
            raise failure[0]
        assert not thread.is_alive(), "the sync pass did not finish within 2 minutes"
        return out.getvalue()

    def on_server(self, address: str, folder: str = "INBOX") -> list[EmailMessage]:
        """What another mail client sees in the mailbox right now (a separate IMAP connection)."""
        with imaplib.IMAP4("127.0.0.1", self.dovecot.imap_port) as imap:
            imap.login(address, MAILBOX_PASSWORD)
            imap.select(_quoted(folder), readonly=True)
            _typ, data = imap.uid("SEARCH", "ALL")
            uids = data[0].split()
            found = []
            for uid in uids:
                _typ, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next(p[1] for p in parts if isinstance(p, tuple))
                found.append(email.message_from_bytes(raw, policy=policy.default))
            return found  # type: ignore[return-value]

    def received(self) -> list[EmailMessage]:
        """Every mail the SMTP server accepted, as a mail client parses it."""
        return [email.message_from_bytes(m.data, policy=policy.default) for m in self.sink.messages]  # type: ignore[misc]

    # --- the people: Chromium and the API ----------------------------------------------------
    def page(self, user: User, *, locale: str = "es-ES") -> Any:
        """A Chromium page signed in as `user` (its own cookies), in `locale`."""
        page = browser_support.new_page(self.chromium, self.live_url, locale=locale)
        self._pages.append(page)
        browser_support.sign_in(page, user.get_username(), PASSWORD)
        return page

    def token(self, user: User) -> str:
        """An API token as an integrator gets one: `buzon token USERNAME`."""
        out = io.StringIO()
        call_command("token", user.get_username(), stdout=out)
        return out.getvalue().strip().splitlines()[-1].split()[-1]

    def close(self) -> None:
        for page in self._pages:
            page.context.close()


def set_fields(page: Any, *, check: tuple[str, ...] = (), uncheck: tuple[str, ...] = (),
               fill: dict[str, str] | None = None, select: dict[str, str] | None = None) -> None:
    """A person changing a form's fields by their names: boxes ticked and unticked, choices, text."""
    for name in check:
        page.check(f"#id_{name}")
    for name in uncheck:
        page.uncheck(f"#id_{name}")
    for name, value in (select or {}).items():
        page.select_option(f"#id_{name}", value)
    for name, value in (fill or {}).items():
        page.fill(f"#id_{name}", value)


def _quoted(folder: str) -> str:
    return folder if folder.isalnum() else f'"{folder}"'


@pytest.fixture
def sink(test_certs) -> Iterator[SMTPServer]:
    server = SMTPServer(test_certs, mode="plain", users={}, require_auth=True).start()
    yield server
    server.stop()


@pytest.fixture
def site(dovecot, sink, live_server, settings, transactional_db) -> Iterator[Site]:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                    "QUEUES": settings.TASK_QUEUES}}
    settings.BASE_URL, settings.BASE_URL_SET = live_server.url, True  # links in mail lead to this site
    yield Site(dovecot=dovecot, sink=sink, live_url=live_server.url)


@pytest.fixture
def browser_site(site, chromium) -> Iterator[Site]:
    """The site, with Chromium for the people who use it (their pages close before the browser)."""
    site.chromium = chromium
    yield site
    site.close()
