"""The bulk path decides exactly what run_pipeline decides, message by message.

One world of mail (the shared corpus and tests/data, interleaved with replies, chains, record
tokens, plus addresses, bounces, out-of-office replies, list mail, copies of our own sent mail,
duplicates, unreadable and skipped mail) is processed twice from the same starting state: once one
message at a time with run_pipeline, once through run_batch in sync-sized chunks. Each run happens in
a transaction that is rolled back afterwards, and everything is compared with database ids replaced
by stable labels: every raw message's outcome and reason, every message's decisions (with their
reasons and data), record, customer, agent, classification, parent, plus the records, customers,
undeliverable addresses, sent mail, notifications and auto-replies left behind.

Two stores' accounts take part too, with the mail a hostile tester sends across them: a customer of
store B writing to store A, one mail delivered to both stores, store B's tokens (tagged or not),
plus addresses, Message-IDs, X-Buzon-Ref and bounces sent to store A, a stranger guessing a token of
the same store. Both paths must keep each store's mail, customers and agents to itself, alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import F, Q

from buzon.crm.models import Agent, AgentGroup, Customer, CustomerEmail, JobApplicant, Notification, Store, Ticket
from buzon.inbound import pipeline
from buzon.inbound.batch import run_batch
from buzon.inbound.models import AutoReplySent
from buzon.messages import targets
from buzon.messages.conversations import Conversation
from buzon.messages.models import Direction, Message, MessageStatus, UndeliverableAddress
from buzon.sync.models import RawMessage
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parent.parent / "data"


class _Done(Exception):
    """Carries a world's summary out of the transaction that is rolled back."""


def _history() -> dict[str, Any]:
    """What exists before the mail arrives: agents, accounts, a customer with a closed ticket, sent mail."""
    group = AgentGroup.objects.create(name="Soporte")
    for n, status in enumerate([Agent.Status.FREE] * 3 + [Agent.Status.BUSY]):
        user = User.objects.create_user(f"agent{n}", email=f"agent{n}@shop.test")
        Agent.objects.create(user=user, status=status).groups.add(group)
    support = support_account(agent_group=group, notify_agent=True, auto_reply_enabled=True,
                              auto_reply_message="Gracias, le responderemos pronto.", outgoing_enabled=True,
                              default_outgoing=True)
    jobs = support_account(email_address="jobs@shop.test", append_to="job_applicant",
                           create_customer_if_not_found=False)
    known = Customer.objects.create(name="Known")
    CustomerEmail.objects.create(customer=known, address="known@jobs.test")
    pipeline.run_pipeline(store_raw(mail(sender="old@client.test", subject="Garantía",
                                         message_id="<hist-1@client.test>"), support).pk)
    ticket = Ticket.objects.get(subject="Garantía")
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.CLOSED)
    deleted = Ticket.objects.create(subject="Borrado")
    deleted_pk = deleted.pk
    Ticket.objects.create(subject="Más reciente")
    deleted.delete()
    sent = {}
    for n, to in ((1, "old@client.test"), (2, "gone@client.test"), (3, "moved@client.test")):
        sent[n] = Message.objects.create(direction=Direction.OUTGOING, status=MessageStatus.SENT, account=support,
                                         message_id=f"<out-{n}@shop.test>", record=ticket, to=[to],
                                         subject="Garantía", from_address="support@shop.test")
    return {"support": support, "jobs": jobs, "ticket": ticket, "sent": sent, "deleted": deleted_pk, **_stores()}


def _stores() -> dict[str, Any]:
    """Two stores, each with an account, an agent group and an agent. Store A's group also holds
    store B's agent (free, while A's is busy): an agent is chosen only among those of the store."""
    made: dict[str, Any] = {}
    for key, status in (("a", Agent.Status.BUSY), ("b", Agent.Status.FREE)):
        store = Store.objects.create(name=f"Tienda {key.upper()}")
        group = AgentGroup.objects.create(name=f"Grupo {key.upper()}", store=store)
        user = User.objects.create_user(f"agent_{key}", email=f"agent_{key}@tienda{key}.test")
        agent = Agent.objects.create(user=user, status=status)
        agent.stores.add(store)
        agent.groups.add(group)
        made[f"store_{key}"] = support_account(email_address=f"hola@tienda{key}.test", store=store, agent_group=group,
                                               notify_agent=True, outgoing_enabled=True)
        made[f"group_{key}"] = group
    made["group_a"].agents.add(Agent.objects.get(user__username="agent_b"))
    pipeline.run_pipeline(store_raw(mail(sender="cliente@b.test", to="hola@tiendab.test", subject="Pedido B",
                                         message_id="<hist-2@b.test>"), made["store_b"]).pk)
    made["ticket_b"] = Ticket.objects.get(subject="Pedido B")
    made["sent_b"] = Message.objects.create(
        direction=Direction.OUTGOING, status=MessageStatus.SENT, account=made["store_b"],
        message_id="<out-4@tiendab.test>", record=made["ticket_b"], to=["cliente@b.test"],
        subject="Pedido B", from_address="hola@tiendab.test")
    return made


def _cross_store(world: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The hostile tester's mail across two stores (and within one)."""
    a, b = "store_a", "store_b"
    tb = world["ticket_b"].pk
    tagged = targets.record_token(world["ticket_b"])
    both = mail(sender="cliente@b.test", to="hola@tiendaa.test", subject="A las dos tiendas",
                message_id="<both@b.test>", headers={"Cc": "hola@tiendab.test"})
    return [
        (a, mail(sender="cliente@b.test", to="hola@tiendaa.test", subject="Hola A", message_id="<x1@b.test>")),
        (a, both), (b, both), (a, both),  # one per store; the second copy to A is A's duplicate
        (a, mail(sender="cliente@b.test", to="hola@tiendaa.test", subject=f"Re: Pedido B {tagged}",
                 message_id="<x2@b.test>")),  # store B's tagged token sent to store A
        (a, mail(sender="cliente@b.test", to="hola@tiendaa.test", subject="Re: Pedido B", message_id="<x3@b.test>",
                 headers={"In-Reply-To": "<out-4@tiendab.test>"})),  # store B's Message-ID sent to store A
        (a, mail(sender="cliente@b.test", to=targets.plus_address("hola@tiendaa.test", world["ticket_b"]),
                 subject="Por plus", message_id="<x4@b.test>")),  # a plus address naming B's ticket, to A
        (a, mail(sender="hola@tiendab.test", to="cliente@b.test", subject="Pedido B", message_id="<x5@tiendab.test>",
                 headers={"X-Buzon-Ref": f"m={world['sent_b'].pk}; {tagged}"})),  # B's sent mail, copied to A
        (a, _dsn("<out-4@tiendab.test>", "cliente@b.test")),  # a bounce of B's mail, at A
        (b, mail(sender="extrano@x.test", to="hola@tiendab.test", subject=f"[#T-{tb}] adivinado",
                 message_id="<x6@x.test>")),  # a stranger guessing a token of the same store
        (b, mail(sender="extrano@x.test", to="hola@tiendab.test", subject=f"[#T-{tb}-aaaaaaaa] falso",
                 message_id="<x7@x.test>")),  # a forged check code
        (b, mail(sender="otro@x.test", to="hola@tiendab.test", subject=f"Re: {tagged}", message_id="<x8@x.test>")),
        (b, mail(sender="cliente@b.test", to="hola@tiendab.test", subject=f"Re: [#T-{tb}] sigo",
                 message_id="<x9@b.test>")),  # the customer's own old token
    ]


def _dsn(original_id: str, recipient: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.client.test>\r\nTo: support@shop.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <dsn-1@mx.client.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.client.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@shop.test\r\nTo: {recipient}\r\n"
        f"Message-ID: {original_id}\r\n\r\n--b--\r\n"
    ).encode()


def _text_bounce(sent_pk: int) -> bytes:
    return (
        "From: postmaster@relay.test\r\nTo: support@shop.test\r\nSubject: failure notice\r\n"
        "Date: Tue, 3 Nov 2026 11:00:00 +0000\r\nMessage-ID: <qmail-1@relay.test>\r\n"
        "X-Failed-Recipients: moved@client.test\r\n\r\n"
        "Hi. This is the qmail-send program. I'm afraid I wasn't able to deliver your message.\r\n\r\n"
        "<moved@client.test>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        f"--- Below this line is a copy of the message.\r\n\r\nX-Buzon-Ref: m={sent_pk}\r\n"
        "From: support@shop.test\r\nSubject: Garantía\r\n"
    ).encode()


def _synthetic(world: dict[str, Any], corpus_ids: list[str]) -> list[tuple[str, bytes]]:
    """(account key, bytes) of the mail that exercises every decision of the bulk path."""
    t = world["ticket"].pk
    o3 = world["sent"][3].pk
    s, j = "support", "jobs"
    ooo = {"Auto-Submitted": "auto-replied", "In-Reply-To": "<out-1@shop.test>"}
    items = [
        (s, mail(sender="old@client.test", subject="Re: Garantía", message_id="<r1@client.test>",
                 headers={"In-Reply-To": "<out-1@shop.test>"})),  # reopens the closed ticket
        (s, mail(sender="Nuevo Uno <new1@client.test>", subject="Pedido 1", message_id="<n1@client.test>")),
        (s, mail(sender="new1@client.test", subject="Re: Pedido 1", message_id="<n2@client.test>",
                 headers={"In-Reply-To": "<n1@client.test>"})),
        (s, mail(sender="colleague@client.test", subject="Re: Re: Pedido 1", message_id="<n3@client.test>",
                 headers={"References": "<n1@client.test> <n2@client.test>"})),
        (s, mail(sender="someone@client.test", subject=f"Re: [# t - {t} ] otra vez", message_id="<tok@x>")),
        (s, mail(sender="typo@client.test", subject=f"[#T-{world['deleted']}] borrado", message_id="<gone@x>")),
        # A token newer than any ticket goes one by one, and so do what answers it and its sender's
        # next mail. The sender is a customer with an agent already, so no assignment moves.
        (s, mail(sender="old@client.test", subject="[#T-999999] no existe", message_id="<typo@x>")),
        (s, mail(sender="old@client.test", subject="Otra del mismo", message_id="<typo2@x>")),
        (s, mail(sender="old@client.test", subject="Re: no existe", message_id="<typo3@x>",
                 headers={"In-Reply-To": "<typo@x>"})),
        (s, mail(sender="plus@client.test", to=targets.plus_address("support@shop.test", world["ticket"]),
                 subject="Sin asunto", message_id="<plus@x>")),
        (s, mail(sender="plus@client.test", to=f"support+ticket-{t}@shop.test", subject="Sin código",
                 message_id="<plus-old@x>")),  # an old plus address, from someone not the ticket's customer
        (s, _dsn("<out-2@shop.test>", "gone@client.test")),
        (s, mail(sender="old@client.test", subject="Out of office: Garantía", message_id="<ooo@x>", headers=ooo)),
        (s, mail(sender="news@lists.test", subject="Boletín", message_id="<list@x>",
                 headers={"List-Id": "<news.lists.test>"})),
        (s, mail(sender="support@shop.test", to="moved@client.test", subject="Garantía",
                 message_id="<provider-3@mail.provider>", headers={"X-Buzon-Ref": f"m={o3}; [#T-{t}]"})),
        (s, mail(sender="moved@client.test", subject="Re: Garantía", message_id="<m1@client.test>",
                 headers={"In-Reply-To": "<provider-3@mail.provider>"})),  # answers the provider's id
        (s, _text_bounce(o3)),
        (s, mail(sender="first@client.test", subject="Re: nada", message_id="<f1@x>",
                 headers={"In-Reply-To": "<later@x>"})),  # answers a message that comes later
        (s, mail(sender="first@client.test", subject="Luego", message_id="<later@x>")),
        (s, mail(sender="support@shop.test", subject="Bucle", message_id="<loop@x>")),
        (s, mail(sender="", subject="Sin remitente", message_id="<nofrom@x>")),
        (s, b""),
        (s, b"\x00\xff not a message at all"),
        (j, mail(sender="known@jobs.test", subject="Candidatura", message_id="<k1@jobs.test>")),
        (j, mail(sender="stranger@jobs.test", subject="Candidatura", message_id="<s1@jobs.test>")),
        (j, mail(sender="stranger@jobs.test", subject="Re: Candidatura", message_id="<s2@jobs.test>",
                 headers={"In-Reply-To": "<k1@jobs.test>"})),
        (j, mail(sender="known@jobs.test", subject="Re: Candidatura", message_id="<k2@jobs.test>",
                 headers={"In-Reply-To": "<s1@jobs.test>"})),  # its parent was not imported
        (j, _dsn("<out-1@shop.test>", "old@client.test")),  # imported: it bounces our own mail
    ]
    items += _cross_store(world)
    for n, parent in enumerate(corpus_ids[:: max(1, len(corpus_ids) // 12)]):
        items.append((s, mail(sender=f"reader{n % 3}@client.test", subject="Re: corpus",
                              message_id=f"<corpus-reply-{n}@x>", headers={"In-Reply-To": parent})))
    items.append(items[1])  # the very same mail again
    items.append((s, mail(sender="new1@client.test", subject="Pedido 2", message_id="<n4@client.test>")))
    return items


def _inputs(corpus: Path | None) -> list[tuple[str, bytes]]:
    files = sorted(p for p in DATA.rglob("*.eml"))
    if corpus is not None:
        files += sorted(p for p in corpus.rglob("*") if p.is_file())
    return [("jobs" if n % 5 == 4 else "support", p.read_bytes()) for n, p in enumerate(files)]


def _message_ids(inputs: list[tuple[str, bytes]]) -> list[str]:
    ids = []
    for _, data in inputs:
        try:
            value = BytesHeaderParser(policy=compat32).parsebytes(data[:20000]).get("Message-ID", "")
        except Exception:  # noqa: BLE001 - a corpus file that is not a message has no id
            continue
        if isinstance(value, str) and re.fullmatch(r"<[^<>\s]+>", value.strip()):
            ids.append(value.strip())
    return ids


class _Labels:
    """Database ids → names that are equal in both runs."""

    def __init__(self, raw_index: dict[int, int]) -> None:
        self.message = {}
        for pk, raw_id, direction, message_id, to, subject in Message.objects.values_list(
                "pk", "raw_id", "direction", "message_id", "to", "subject"):
            if raw_id in raw_index:
                self.message[pk] = f"raw{raw_index[raw_id]}"
            elif re.fullmatch(r"<(out|hist)-\d+@[a-z.]+>", message_id):
                self.message[pk] = message_id  # made by _history()
            else:  # queued by the pipeline (auto-replies, notifications): its Message-ID is random
                self.message[pk] = f"{direction} to {to}: {subject}"
        emails: dict[int, list[str]] = {}
        for customer_id, address in CustomerEmail.objects.values_list("customer_id", "address"):
            emails.setdefault(customer_id, []).append(address)
        self.customer = {c.pk: "customer " + ",".join(sorted(emails.get(c.pk, []))) + f" ({c.name})"
                               + (f" of {c.store.name}" if c.store else "")
                         for c in Customer.objects.select_related("store")}
        self.agent = {a.pk: a.user.username for a in Agent.objects.select_related("user")}
        first: dict[tuple[int, int], str] = {}
        for record_type_id, record_id, pk in Message.objects.filter(record_id__isnull=False).order_by(
                F("raw_id").asc(nulls_last=True), "pk").values_list("record_type_id", "record_id", "pk"):
            first.setdefault((record_type_id, record_id), self.message[pk])
        self.record: dict[tuple[str, int], str] = {}
        for target_key, model in (("ticket", Ticket), ("job_applicant", JobApplicant)):
            type_id = ContentType.objects.get_for_model(model).pk
            for pk in model.objects.values_list("pk", flat=True):
                self.record[(target_key, pk)] = f"{target_key} first seen on {first.get((type_id, pk), '?')}"
        self.message = {pk: self.text(label) for pk, label in self.message.items()}  # tokens in subjects

    def token(self, prefix: str, pk: str) -> str:
        target = targets.target_by_prefix(prefix)
        if target is None:
            return f"[#{prefix}-{pk}]"
        if target.key == "customer":
            return self.customer.get(int(pk), f"missing customer {pk}")
        return self.record.get((target.key, int(pk)), f"missing {target.key} {pk}")

    def text(self, value: str) -> str:
        value = re.sub(r"\[#([A-Z]+)-(\d+)(-[a-z0-9]+)?\]",
                       lambda m: f"<{self.token(m[1], m[2])}{' tagged' if m[3] else ''}>", value)
        value = re.sub(r"\+([a-z_]+)-(\d+)(-[a-z0-9]+)?@",
                       lambda m: f"+<{self.record.get((m[1], int(m[2])), m[2])}{' tagged' if m[3] else ''}>@", value)
        value = re.sub(r"(?:message |message:|/inbox/)(\d+)", lambda m: f"message <{self.message.get(int(m[1]))}>",
                       value)
        return re.sub(r"customer:(\d+)", lambda m: f"<{self.customer.get(int(m[1]))}>", value)

    def decision(self, entry: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in entry.items():
            if key == "customer":
                value = self.customer.get(value, value)
            elif key in ("parent", "bounced_message"):
                value = self.message.get(value, value)
            elif key == "agent":
                value = self.agent.get(value, value)
            elif isinstance(value, str):
                value = self.text(value)
            out[key] = value
        return out


def _record_label(labels: _Labels, record: Any) -> str | None:
    if record is None:
        return None
    target = targets.target_for(record)
    return labels.token(target.prefix, str(record.pk)) if target else repr(record)


def _conversations(labels: _Labels) -> tuple[dict[int, str], list[Any]]:
    """Conversations named by their messages' labels (ids differ between the runs), with what the inbox
    shows of each; timestamps are the runs' own, so their order is compared instead."""
    members: dict[int, list[str]] = {}
    for pk, conversation_id in Message.objects.values_list("pk", "conversation_id"):
        assert conversation_id is not None, f"message {labels.message.get(pk)} has no conversation"
        members.setdefault(conversation_id, []).append(str(labels.message.get(pk)))
    name = {pk: " + ".join(sorted(m)) for pk, m in members.items()}
    rows = []
    for c in Conversation.objects.all():
        assert c.message_count == len(members.get(c.pk, [])), name.get(c.pk)
        # last activity: a customer's mail or a person's; automatic mail only counts
        shown = Q(direction=Direction.INCOMING, classification="normal") | Q(created_by__isnull=False)
        assert c.last_message_at == (Message.objects.filter(shown, conversation=c).order_by(
            "-created_at").values_list("created_at", flat=True).first() or Message.objects.filter(
            conversation=c, direction=Direction.INCOMING).order_by("-created_at").values_list(
            "created_at", flat=True).first())
        rows.append((name.get(c.pk, "empty"), c.message_count, c.status, labels.text(c.subject),
                     labels.customer.get(c.customer_id) if c.customer_id else None,
                     labels.agent.get(c.agent_id) if c.agent_id else None,
                     labels.text(c.snippet), c.store.name if c.store else None,
                     _record_label(labels, c.record_type.get_object_for_this_type(pk=c.record_id))
                     if c.record_id else None))
    return name, sorted(rows, key=str)


def _summary(raw_ids: list[int]) -> dict[str, Any]:
    raw_index = {raw_id: n for n, raw_id in enumerate(raw_ids)}
    labels = _Labels(raw_index)
    conversation_names, conversations = _conversations(labels)
    rows = []
    for raw in RawMessage.objects.filter(pk__in=raw_ids).order_by("id"):
        message = Message.objects.filter(raw=raw).first()
        row: dict[str, Any] = {"raw": raw_index[raw.pk], "status": raw.status, "reason": labels.text(raw.status_reason)}
        if message is not None:
            row.update(
                store=message.store.name if message.store else None,
                message=message.status, reason_message=labels.text(message.status_reason),
                classification=message.classification,
                customer=labels.customer.get(message.customer_id) if message.customer_id else None,
                agent=labels.agent.get(message.agent_id) if message.agent_id else None,
                record=_record_label(labels, message.record) if message.record_id else None,
                decisions=[labels.decision(d) for d in message.decisions],
                conversation=conversation_names[message.conversation_id],
            )
        rows.append(row)
    return {
        "messages": rows,
        "conversations": conversations,
        "tickets": sorted((labels.token("T", str(t.pk)), t.subject, t.status, labels.customer.get(t.customer_id),
                           labels.agent.get(t.agent_id)) for t in Ticket.objects.all()),
        "applicants": sorted((labels.token("J", str(a.pk)), a.email, a.subject) for a in JobApplicant.objects.all()),
        "customers": sorted(((label, labels.agent.get(c.agent_id), str(c.agent_group_id), c.store_id)
                             for c in Customer.objects.all() if (label := labels.customer[c.pk])), key=str),
        "undeliverable": sorted((u.address, u.reason, labels.message.get(u.bounce_id))
                                for u in UndeliverableAddress.objects.all()),
        "customer_emails": sorted(CustomerEmail.objects.values_list("address", "store__name", "undeliverable",
                                                                    "undeliverable_reason"), key=str),
        "sent": sorted((labels.message[m.pk], m.status, m.status_reason, m.provider_message_id,
                        labels.text(m.subject), _record_label(labels, m.record) if m.record_id else None)
                       for m in Message.objects.filter(direction=Direction.OUTGOING)),
        "notifications": sorted((n.user.username, n.kind, labels.text(n.key), labels.text(n.url), n.text)
                                for n in Notification.objects.select_related("user")),
        "auto_replies": sorted((a.address, labels.message.get(a.message_id)) for a in AutoReplySent.objects.all()),
    }


def _restart_sequences() -> None:
    """PostgreSQL: a rollback does not reset sequences; both worlds start from the same ids (so that
    ids typed into mail, like a ticket token, have the same length and everything compares)."""
    if connection.vendor != "postgresql":
        return  # SQLite's AUTOINCREMENT counters roll back with the transaction
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), apps.get_models()):
            cursor.execute(sql)


def _world(corpus: Path | None, process: Callable[[list[int]], object]) -> dict[str, Any]:
    try:
        with transaction.atomic():
            _restart_sequences()
            world = _history()
            inputs = _inputs(corpus)
            synthetic = _synthetic(world, _message_ids(inputs))
            # the synthetic mail spread through the files, so chunks mix both
            step = max(1, len(inputs) // len(synthetic))
            mixed: list[tuple[str, bytes]] = []
            for n, item in enumerate(inputs):
                mixed.append(item)
                if n % step == step - 1 and synthetic:
                    mixed.append(synthetic.pop(0))
            mixed += synthetic
            ids = [store_raw(data, world[key], folder="INBOX" if key == "support" else "Jobs").pk
                   for key, data in mixed]
            process(ids)
            raise _Done(_summary(ids))
    except _Done as done:
        return done.args[0]  # type: ignore[no-any-return]


def _one_by_one(ids: list[int]) -> None:
    for raw_id in ids:
        pipeline.run_pipeline(raw_id)


def _assert_same(one: dict[str, Any], bulk: dict[str, Any]) -> None:
    for n, (a, b) in enumerate(zip(one["messages"], bulk["messages"], strict=True)):
        assert a == b, f"message {n} differs"
    for key in one:
        assert one[key] == bulk[key], key


def _check(corpus: Path | None) -> dict[str, Any]:
    assert not Message.objects.exists()
    one = _world(corpus, _one_by_one)
    bulk_outcomes = {}
    bulk = _world(corpus, lambda ids: bulk_outcomes.update(run_batch(ids)))
    _assert_same(one, bulk)
    # Every message has a conversation (_conversations); replies and tokens joined their records'.
    assert any(c[1] > 2 and c[8] for c in one["conversations"])
    statuses = [row["status"] for row in one["messages"]]
    assert statuses.count(RawMessage.Status.SKIPPED) >= 2 and RawMessage.Status.STORED not in statuses
    assert {"processed", "duplicate", "skipped", "unparseable"} <= set(bulk_outcomes)
    decisions = {(d["step"], d["decision"]) for row in one["messages"] for d in row.get("decisions", [])}
    for wanted in [("thread", "token"), ("thread", "plus_address"), ("thread", "reply"), ("classify", "bounce"),
                   ("classify", "auto_reply"), ("classify", "list"), ("classify", "loop"), ("route", "reopened"),
                   ("customer", "created"), ("customer", "linked"), ("assign", "assigned"), ("autoreply", "sent"),
                   ("thread", "name_ignored"), ("thread", "name_refused")]:
        assert wanted in decisions, wanted
    return bulk_outcomes


def test_bulk_path_decides_as_one_by_one_on_the_test_mail():
    outcomes = _check(None)
    assert outcomes["unparseable"] == 2


@pytest.mark.slow
def test_bulk_path_decides_as_one_by_one_on_the_corpus(corpus):
    _check(corpus)


@pytest.mark.postgres
def test_bulk_path_decides_as_one_by_one_on_postgresql(postgres_url):
    """The same on PostgreSQL (RETURNING ids, FOR UPDATE OF, sequences that a rollback does not reset)."""
    _check(None)
