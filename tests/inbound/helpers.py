"""Storing raw mail the way the sync engine does, for pipeline tests."""

from __future__ import annotations

import hashlib
import itertools
from email.utils import formatdate, make_msgid

from django.contrib.auth.models import User

from buzon.crm.models import Agent, AgentGroup
from buzon.mailboxes.models import EmailAccount
from buzon.sync.models import RawMessage

_uids = itertools.count(1)


def store_raw(data: bytes, account: EmailAccount | None = None, folder: str = "INBOX") -> RawMessage:
    return RawMessage.objects.create(
        account=account, account_address=account.email_address if account else "", folder=folder, uidvalidity=1,
        uid=next(_uids), data=data, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
    )


def mail(
    *, sender: str = "Ana Pérez <ana@customer.test>", to: str = "support@shop.test", subject: str = "Hola",
    body: str = "Quiero cambiar mi pedido.", message_id: str | None = None, headers: dict[str, str] | None = None,
) -> bytes:
    lines = [
        f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {formatdate()}",
        f"Message-ID: {message_id or make_msgid(domain='customer.test')}",
        "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode("utf-8")


def support_account(**options: object) -> EmailAccount:
    defaults: dict[str, object] = {"email_address": "support@shop.test", "incoming_enabled": True,
                                   "append_to": "ticket", "auto_link": True}
    defaults.update(options)
    return EmailAccount.objects.create(**defaults)


def free_agent_in_group(username: str = "lucia", password: str = "pw-lucia-123") -> tuple[User, Agent, AgentGroup]:
    """An agent (free) in the group "Soporte", signing in as `username` with `password`."""
    user = User.objects.create_user(username, email=f"{username}@shop.test", password=password)
    agent = Agent.objects.create(user=user, status=Agent.Status.FREE)
    group = AgentGroup.objects.create(name="Soporte")
    agent.groups.add(group)
    return user, agent, group
