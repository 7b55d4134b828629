"""The batch runner reaches exactly what run_pipeline reaches, message by message, with fewer queries."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from buzon.crm.models import Agent, AgentGroup, Customer, CustomerEmail, Ticket
from buzon.inbound import pipeline
from buzon.inbound.batch import run_batch
from buzon.messages.models import Direction, Message, MessageStatus
from buzon.sync.models import RawMessage
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db


def _world(tag: str) -> list[bytes]:
    """A mixed inbox; ``tag`` keeps two worlds' ids and addresses apart in one database."""
    first = f"<first-{tag}@customer.test>"
    return [
        mail(sender=f"ana@{tag}.test", subject="Pedido", message_id=first),
        mail(sender=f"ana@{tag}.test", subject="Otra cosa", message_id=f"<second-{tag}@x>"),
        mail(sender=f"luis@{tag}.test", subject="Factura", message_id=f"<third-{tag}@x>"),
        mail(sender=f"ana@{tag}.test", subject="Pedido", message_id=first),  # the same mail again
        mail(sender=f"ana@{tag}.test", subject="Re: Pedido", headers={"In-Reply-To": first},
             message_id=f"<reply-{tag}@x>"),
        mail(sender=f"robot@{tag}.test", subject="Aviso", headers={"Auto-Submitted": "auto-generated"},
             message_id=f"<auto-{tag}@x>"),
        mail(sender=f"eva@{tag}.test", subject="Con referencia desconocida", headers={"References": "<nope@x>"},
             message_id=f"<ref-{tag}@x>"),
        b"",
        mail(sender=f"MAILER-DAEMON@{tag}.test", subject="Undelivered Mail Returned to Sender",
             message_id=f"<bounce-{tag}@x>", headers={"X-Failed-Recipients": f"gone@{tag}.test"}),
    ]


def _summary(account, tag: str) -> list[tuple]:
    rows = []
    for raw in RawMessage.objects.filter(account=account).order_by("id"):
        message = Message.objects.filter(raw=raw).first()
        decisions = [(d["step"], d["decision"]) for d in message.decisions] if message else []
        rows.append((
            raw.status, message.status if message else None, message.classification if message else None,
            message.customer.primary_email.replace(tag, "T") if message and message.customer else None,
            type(message.record).__name__ if message and message.record_id else None, decisions,
        ))
    return rows


def test_batch_and_one_by_one_reach_the_same_result():
    one = support_account(email_address="one@shop.test")
    many = support_account(email_address="many@shop.test")
    one_ids = [store_raw(data, one).pk for data in _world("w1")]
    many_ids = [store_raw(data, many).pk for data in _world("w2")]
    for raw_id in one_ids:
        pipeline.run_pipeline(raw_id)
    outcomes = run_batch(many_ids)
    assert outcomes["processed"] >= 6
    assert _summary(one, "w1") == _summary(many, "w2")
    ticket_subjects = Counter(re.sub(r"w\d", "", t.subject) for t in Ticket.objects.all())
    assert all(count % 2 == 0 for count in ticket_subjects.values())
    assert CustomerEmail.objects.filter(address__endswith="w1.test").count() == \
        CustomerEmail.objects.filter(address__endswith="w2.test").count()


def test_batch_is_idempotent_and_uses_few_queries_per_message():
    account = support_account()
    ids = [store_raw(mail(sender=f"c{i % 7}@customer.test", subject=f"n{i}"), account).pk for i in range(60)]
    with CaptureQueriesContext(connection) as queries:
        assert run_batch(ids) == Counter(processed=60)
    assert len(queries.captured_queries) < 30
    assert Message.objects.filter(direction=Direction.INCOMING).count() == Ticket.objects.count() == 60
    assert Customer.objects.count() == 7
    assert run_batch(ids) == Counter(processed=60)  # again: the same rows, updated one by one
    assert Message.objects.count() == Ticket.objects.count() == 60 and Customer.objects.count() == 7


def _dsn(tag: str, original_id: str) -> bytes:
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.{tag}.test>\r\nTo: support@shop.test\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <dsn-{tag}@mx.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\n"
        f"Final-Recipient: rfc822; gone@{tag}.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@shop.test\r\nTo: gone@{tag}.test\r\n"
        f"Message-ID: {original_id}\r\n\r\n--b--\r\n"
    ).encode()


def _history(account, tag: str) -> None:
    """Stored before the batch: a closed ticket of a known customer, and mail Buzón sent about it."""
    group = AgentGroup.objects.create(name=f"group-{tag}")
    for n in range(2):
        agent = Agent.objects.create(user=User.objects.create(username=f"agent{n}-{tag}"), status=Agent.Status.FREE)
        agent.groups.add(group)
    account.agent_group = group
    account.save()
    pipeline.run_pipeline(store_raw(mail(sender=f"old@{tag}.test", subject="Garantía",
                                         message_id=f"<hist-{tag}@x>"), account).pk)
    ticket = Ticket.objects.get(subject="Garantía", customer__emails__address=f"old@{tag}.test")
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.CLOSED)
    Message.objects.create(direction=Direction.OUTGOING, status=MessageStatus.SENT, account=account,
                           message_id=f"<ours-{tag}@shop.test>", record=ticket, to=[f"gone@{tag}.test"])


def _replies(tag: str) -> list[bytes]:
    """Replies to stored mail and to mail of the same batch, chains, a bounce and what depends on it."""
    return [
        mail(sender=f"old@{tag}.test", subject="Re: Garantía", message_id=f"<r1-{tag}@x>",
             headers={"In-Reply-To": f"<hist-{tag}@x>"}),  # reopens the closed ticket
        mail(sender=f"new@{tag}.test", subject="Nuevo", message_id=f"<n1-{tag}@x>"),
        mail(sender=f"new@{tag}.test", subject="Re: Nuevo", message_id=f"<n2-{tag}@x>",
             headers={"In-Reply-To": f"<n1-{tag}@x>"}),
        mail(sender=f"otra@{tag}.test", subject="Re: Re: Nuevo", message_id=f"<n3-{tag}@x>",
             headers={"References": f"<n1-{tag}@x> <n2-{tag}@x>"}),  # a chain, by References
        mail(sender=f"first@{tag}.test", subject="Re: nada", message_id=f"<f1-{tag}@x>",
             headers={"In-Reply-To": f"<later-{tag}@x>"}),  # answers a message that comes later
        mail(sender=f"first@{tag}.test", subject="Luego", message_id=f"<later-{tag}@x>"),
        mail(sender=f"gone@{tag}.test", subject="Re: Garantía", message_id=f"<g1-{tag}@x>",
             headers={"In-Reply-To": f"<ours-{tag}@shop.test>"}),  # answers what Buzón sent
        _dsn(tag, f"<ours-{tag}@shop.test>"),
        mail(sender=f"curious@{tag}.test", subject="Re: Undelivered", message_id=f"<c1-{tag}@x>",
             headers={"In-Reply-To": f"<dsn-{tag}@mx.test>"}),  # answers the bounce, which goes one by one
        mail(sender=f"new@{tag}.test", subject="Otra pregunta", message_id=f"<n4-{tag}@x>"),
    ]


def _full_summary(account, tag: str) -> list[tuple]:
    rows = []
    for raw in RawMessage.objects.filter(account=account).order_by("id"):
        message = Message.objects.filter(raw=raw).first()
        record = message.record if message and message.record_id else None
        rows.append((getattr(record, "status", None), bool(message and message.agent_id)))
    return rows


def test_replies_bounces_and_chains_match_one_by_one():
    one = support_account(email_address="one@shop.test")
    many = support_account(email_address="many@shop.test")
    _history(one, "w1")
    _history(many, "w2")
    one_ids = [store_raw(data, one).pk for data in _replies("w1")]
    many_ids = [store_raw(data, many).pk for data in _replies("w2")]
    for raw_id in one_ids:
        pipeline.run_pipeline(raw_id)
    with CaptureQueriesContext(connection) as queries:
        outcomes = run_batch(many_ids)
    assert outcomes["processed"] == len(many_ids)
    assert _summary(one, "w1") == _summary(many, "w2")
    assert _full_summary(one, "w1") == _full_summary(many, "w2")
    reply = Message.objects.get(message_id="<r1-w2@x>")
    assert reply.record.status == Ticket.Status.OPEN and reply.record.subject == "Garantía"
    chain = Message.objects.get(message_id="<n3-w2@x>")
    assert chain.record == Message.objects.get(message_id="<n1-w2@x>").record
    assert Message.objects.get(message_id="<ours-w2@shop.test>").status == MessageStatus.BOUNCED
    for tag in ("w1", "w2"):  # the agents shared the new customers evenly, in both worlds
        loads = Counter(Customer.objects.filter(agent_group__name=f"group-{tag}").values_list("agent", flat=True))
        assert max(loads.values()) - min(loads.values()) <= 1
    assert len(queries.captured_queries) < 40 * len(many_ids)  # sanity: nothing pathological


def test_skipped_senders_match_one_by_one_and_stay_on_record():
    one = support_account(email_address="one@shop.test", create_customer_if_not_found=False)
    many = support_account(email_address="many@shop.test", create_customer_if_not_found=False)
    worlds = {}
    for account, tag in ((one, "w1"), (many, "w2")):
        known = Customer.objects.create()
        CustomerEmail.objects.create(customer=known, address=f"known@{tag}.test")
        worlds[tag] = [store_raw(data, account).pk for data in (
            mail(sender=f"known@{tag}.test", subject="Hola", message_id=f"<k1-{tag}@x>"),
            mail(sender=f"stranger@{tag}.test", subject="Hola", message_id=f"<s1-{tag}@x>"),
            mail(sender=f"stranger@{tag}.test", subject="Re: Hola", message_id=f"<s2-{tag}@x>",
                 headers={"In-Reply-To": f"<k1-{tag}@x>"}),
            mail(sender=f"known@{tag}.test", subject="Re: Hola", message_id=f"<k2-{tag}@x>",
                 headers={"In-Reply-To": f"<k1-{tag}@x>"}),
        )]
    for raw_id in worlds["w1"]:
        pipeline.run_pipeline(raw_id)
    assert run_batch(worlds["w2"]) == Counter(processed=2, skipped=2)
    assert _summary(one, "w1") == _summary(many, "w2")
    assert not Message.objects.filter(from_address__startswith="stranger@").exists()
    assert RawMessage.objects.filter(account=many, status=RawMessage.Status.SKIPPED).count() == 2  # kept


def test_replies_in_a_batch_cost_queries_per_batch_not_per_message():
    account = support_account()
    data = []
    for i in range(60):
        headers = {"In-Reply-To": f"<m{i - 1}@customer.test>"} if i % 3 else {}
        data.append(mail(sender=f"c{i % 7}@customer.test", subject=f"n{i}", message_id=f"<m{i}@customer.test>",
                         headers=headers))
    ids = [store_raw(d, account).pk for d in data]
    with CaptureQueriesContext(connection) as queries:
        assert run_batch(ids) == Counter(processed=60)
    assert len(queries.captured_queries) < 60
    assert Ticket.objects.count() == 20
    replies = Message.objects.filter(in_reply_to__startswith="<m")
    assert all(m.record_id for m in replies) and replies.count() == 40


@pytest.mark.postgres
def test_batch_matches_one_by_one_on_postgresql():
    """The bulk path (RETURNING ids, row locks with FOR UPDATE OF) gives the same results on PostgreSQL."""
    test_replies_bounces_and_chains_match_one_by_one()


def test_a_failure_in_the_bulk_path_marks_that_message_only(monkeypatch):
    """A step raising for one message rolls the chunk's bulk work back; run_pipeline then processes
    every message alone, so the failing one is kept as failed (with the step) and the rest go through."""
    from buzon.inbound.mail import automatic

    real = automatic.auto_reply_reason

    def auto_reply_reason(parsed):
        if parsed.subject == "boom":
            raise RuntimeError("a bug in a classifier")
        return real(parsed)

    monkeypatch.setattr(automatic, "auto_reply_reason", auto_reply_reason)
    account = support_account()
    subjects = ["uno", "dos", "boom", "tres", "Re: uno"]
    ids = [store_raw(mail(sender=f"c{n}@customer.test", subject=s, message_id=f"<f{n}@x>",
                          headers={"In-Reply-To": "<f0@x>"} if s.startswith("Re:") else None), account).pk
           for n, s in enumerate(subjects)]
    assert run_batch(ids) == Counter(processed=4, failed=1)
    failed = Message.objects.get(raw_id=ids[2])
    assert failed.status == MessageStatus.FAILED and failed.status_reason.startswith("classify: RuntimeError")
    assert RawMessage.objects.get(pk=failed.raw_id).status == RawMessage.Status.FAILED
    assert Message.objects.filter(status=MessageStatus.PROCESSED).count() == 4
    assert Ticket.objects.count() == 3 and Message.objects.get(subject="Re: uno").record_id is not None
    monkeypatch.setattr(automatic, "auto_reply_reason", real)
    assert run_batch([failed.raw_id]) == Counter(processed=1)  # fixed: re-running it is safe
    assert Message.objects.count() == 5 and Ticket.objects.count() == 4
