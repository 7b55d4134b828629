"""The batch runner reaches exactly what run_pipeline reaches, message by message, with fewer queries."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from buzon.crm.models import Customer, CustomerEmail, Ticket
from buzon.inbound import pipeline
from buzon.inbound.batch import run_batch
from buzon.messages.models import Direction, Message
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
