"""Auto-replies (RFC 3834): first message of a new conversation only, never to automated senders,
at most one per sender per day, queued through outgoing mail."""

from __future__ import annotations

import pytest

from buzon.inbound import pipeline
from buzon.messages.models import Direction, Message
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db


def _account():
    return support_account(auto_reply_enabled=True, auto_reply_message="Gracias, le respondemos pronto.",
                           outgoing_enabled=True, default_outgoing=True, smtp_host="localhost")


def _auto_replies():
    return Message.objects.filter(direction=Direction.OUTGOING)


def test_first_message_gets_one_auto_reply_per_day():
    account = _account()
    pipeline.run_pipeline(store_raw(mail(subject="Consulta"), account).pk)
    replies = list(_auto_replies())
    if not replies:
        decisions = Message.objects.get().decisions
        pytest.fail(f"no auto-reply queued: {decisions}")
    assert replies[0].to == ["ana@customer.test"] and replies[0].subject.startswith("Re: Consulta")
    pipeline.run_pipeline(store_raw(mail(subject="Otra consulta"), account).pk)  # same sender, same day
    assert _auto_replies().count() == 1


@pytest.mark.parametrize("headers,sender", [
    ({"Auto-Submitted": "auto-replied"}, "ana@customer.test"),
    ({"X-Autoreply": "yes"}, "ana@customer.test"),
    ({"Precedence": "bulk"}, "ana@customer.test"),
    ({"List-Id": "<news.customer.test>"}, "ana@customer.test"),
    ({}, "no-reply@customer.test"),
    ({}, "MAILER-DAEMON@customer.test"),
])
def test_automated_senders_are_never_answered(headers, sender):
    pipeline.run_pipeline(store_raw(mail(sender=sender, headers=headers, subject="Aviso"), _account()).pk)
    assert not _auto_replies().exists()


def test_a_reply_is_not_answered_automatically():
    account = _account()
    pipeline.run_pipeline(store_raw(mail(message_id="<a@customer.test>"), account).pk)
    Message.objects.filter(direction=Direction.OUTGOING).delete()
    pipeline.run_pipeline(store_raw(mail(sender="luis@customer.test", headers={"In-Reply-To": "<a@customer.test>"}),
                                    account).pk)
    assert not _auto_replies().exists()
