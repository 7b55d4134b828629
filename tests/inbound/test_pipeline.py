"""The pipeline end to end on real raw messages: records, threading, dedupe, skips, quarantine."""

from __future__ import annotations

import pytest

from buzon.crm.models import Customer, CustomerEmail, Ticket
from buzon.inbound import pipeline
from buzon.inbound.context import describe
from buzon.messages import targets
from buzon.messages.models import Classification, Direction, Message, MessageStatus
from buzon.sync.models import RawMessage
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db


def test_new_mail_creates_customer_ticket_and_records_decisions():
    account = support_account()
    raw = store_raw(mail(subject="Pedido 55 roto"), account)
    assert pipeline.run_pipeline(raw.pk) == "processed"
    message = Message.objects.get(raw=raw)
    assert message.status == MessageStatus.PROCESSED and message.direction == Direction.INCOMING
    assert message.from_address == "ana@customer.test" and message.from_name == "Ana Pérez"
    assert message.text.strip() == "Quiero cambiar mi pedido."
    ticket = Ticket.objects.get()
    assert message.record == ticket and ticket.subject == "Pedido 55 roto"
    assert ticket.customer == message.customer == Customer.objects.get()
    assert CustomerEmail.objects.get().address == "ana@customer.test"
    steps = [d["step"] for d in message.decisions]
    assert steps[:4] == ["parse", "deduplicate", "classify", "thread"]
    assert all(describe(d) for d in message.decisions)
    raw.refresh_from_db()
    assert raw.status == RawMessage.Status.PROCESSED


def test_reprocessing_duplicates_nothing():
    account = support_account()
    raw = store_raw(mail(), account)
    pipeline.run_pipeline(raw.pk)
    first = Message.objects.get()
    assert pipeline.run_pipeline(raw.pk) == "processed"
    assert Message.objects.get().pk == first.pk
    assert Ticket.objects.count() == Customer.objects.count() == 1


def test_same_mail_in_two_folders_and_two_accounts_is_one_message():
    account = support_account()
    other = support_account(email_address="sales@shop.test", append_to="")
    data = mail(message_id="<same@customer.test>")
    results = [pipeline.run_pipeline(store_raw(data, account).pk),
               pipeline.run_pipeline(store_raw(data, account, folder="Archive").pk),
               pipeline.run_pipeline(store_raw(b"Received: by mx2\r\n" + data, other).pk)]
    assert results == ["processed", "duplicate", "duplicate"]
    assert Message.objects.count() == 1
    assert RawMessage.objects.filter(status=RawMessage.Status.PROCESSED).count() == 3


def test_reply_by_headers_token_and_plus_address_joins_the_ticket_and_reopens_it():
    account = support_account()
    pipeline.run_pipeline(store_raw(mail(message_id="<first@customer.test>"), account).pk)
    ticket = Ticket.objects.get()
    ticket.status = Ticket.Status.CLOSED
    ticket.save()
    pipeline.run_pipeline(store_raw(mail(subject="Re: Hola", headers={"In-Reply-To": "<first@customer.test>"}),
                                    account).pk)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    pipeline.run_pipeline(store_raw(mail(subject=f"otra cosa [# t - {ticket.pk} ]"), account).pk)
    plus = targets.plus_address("support@shop.test", ticket)
    pipeline.run_pipeline(store_raw(mail(subject="sin token", to=plus), account).pk)
    assert Ticket.objects.count() == 1
    assert Message.objects.filter(record_id=ticket.pk).count() == 4


def test_reply_to_a_sent_message_whose_id_the_provider_rewrote():
    account = support_account()
    ticket = Ticket.objects.create(subject="Pedido")
    sent = Message.objects.create(direction=Direction.OUTGOING, status=MessageStatus.SENT, account=account,
                                  message_id="<buzon-1@shop.test>", record=ticket, subject="Pedido")
    # The Sent folder copy carries the provider's id and our X-Buzon-Ref header.
    copy = mail(sender="support@shop.test", to="ana@customer.test", message_id="<rewritten@provider.test>",
                headers={"X-Buzon-Ref": targets.ref_header(sent.pk, ticket)})
    assert pipeline.run_pipeline(store_raw(copy, account, folder="Sent").pk) == "duplicate"
    sent.refresh_from_db()
    assert sent.provider_message_id == "<rewritten@provider.test>"
    reply = mail(subject="Re: Pedido", headers={"In-Reply-To": "<rewritten@provider.test>"})
    pipeline.run_pipeline(store_raw(reply, account).pk)
    assert Message.objects.get(direction=Direction.INCOMING).record == ticket


def test_unknown_sender_is_skipped_then_imported_when_they_become_a_customer():
    account = support_account(create_customer_if_not_found=False)
    raw = store_raw(mail(), account)
    assert pipeline.run_pipeline(raw.pk) == "skipped"
    raw.refresh_from_db()
    assert raw.status == RawMessage.Status.SKIPPED and "not a customer" in raw.status_reason
    assert not Message.objects.exists() and not Customer.objects.exists() and not Ticket.objects.exists()
    customer = Customer.objects.create()
    CustomerEmail.objects.create(customer=customer, address="ANA@customer.test")
    assert pipeline.run_pipeline(raw.pk) == "processed"
    assert Message.objects.get().customer == customer


def test_a_failing_step_quarantines_the_message_and_it_can_be_rerun(monkeypatch):
    account = support_account()
    raw = store_raw(mail(), account)

    def boom(ctx):
        raise RuntimeError("disk on fire")

    from buzon.inbound.steps import route
    monkeypatch.setattr(route, "run", boom)
    assert pipeline.run_pipeline(raw.pk) == "failed"
    message = Message.objects.get()
    assert message.status == MessageStatus.FAILED and "route" in message.status_reason
    assert not Ticket.objects.exists()  # the failed run's work was rolled back
    monkeypatch.undo()
    assert pipeline.run_pipeline(raw.pk) == "processed"
    message.refresh_from_db()
    assert message.status == MessageStatus.PROCESSED and Ticket.objects.count() == 1


@pytest.mark.parametrize("data", [b"", b"\n", b"\x00\x01\x02", b"just some text without headers"])
def test_unreadable_bytes_are_kept_with_a_reason(data):
    raw = store_raw(data, support_account())
    assert pipeline.run_pipeline(raw.pk) == "unparseable"
    message = Message.objects.get()
    assert message.status == MessageStatus.UNPARSEABLE and message.status_reason


def test_own_address_is_a_loop_and_creates_nothing():
    account = support_account()
    pipeline.run_pipeline(store_raw(mail(sender="support@shop.test"), account).pk)
    message = Message.objects.get()
    assert message.classification == Classification.LOOP
    assert not Customer.objects.exists() and not Ticket.objects.exists()


@pytest.mark.parametrize("bulk", [False, True])
def test_mail_without_a_sender_address_each_gets_its_own_customer_record(bulk):
    from buzon.inbound.batch import run_batch

    account = support_account(append_to="customer")
    raws = [store_raw(mail(sender="undisclosed-recipients:;", subject=f"sin remitente {i}"), account)
            for i in range(2)]
    if bulk:
        assert run_batch([r.pk for r in raws])["processed"] == 2
    else:
        assert [pipeline.run_pipeline(r.pk) for r in raws] == ["processed", "processed"]
    assert set(RawMessage.objects.values_list("status", flat=True)) == {RawMessage.Status.PROCESSED}
    assert Customer.objects.count() == 2 and not CustomerEmail.objects.exists()
