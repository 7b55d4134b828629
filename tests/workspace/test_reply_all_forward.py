"""Reply-all and forward from the conversation page and the API, delivered through the SMTP sink
and read back as a mail client parses them: the Cc of a reply-all (never Buzón's own mailbox), a
forward's quoted original and its attachment; both join the conversation; another store's agent is
a 404 and nothing is sent."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from buzon.crm.models import Agent, Store
from buzon.inbound import pipeline
from buzon.messages.models import Direction, Message
from buzon.workspace.models import ConversationEvent
from tests.inbound.helpers import store_raw
from tests.inbound.test_conversation_answers import _signed_in
from tests.workspace.test_conversations import _deliver

pytestmark = pytest.mark.django_db


def _customer_mail(shop: dict[str, Any]) -> Message:
    mail = EmailMessage()
    mail["From"] = "Ana <ana@customer.test>"
    mail["To"] = "sender@example.test, compras@customer.test"
    mail["Cc"] = "Jefe de Ana <jefe@customer.test>, sender@example.test"
    mail["Subject"] = "Factura de noviembre"
    mail["Message-ID"] = "<factura@customer.test>"
    mail.set_content("Adjunto la factura con el error.")
    mail.add_attachment(b"%PDF-1.4 factura", maintype="application", subtype="pdf", filename="factura.pdf")
    raw = store_raw(mail.as_bytes(), shop["account"])
    assert pipeline.run_pipeline(raw.pk) == "processed"
    return Message.objects.get(raw=raw)


def _delivered_to(shop: dict[str, Any], address: str) -> list[EmailMessage]:
    found = [message_from_bytes(m.data, policy=default) for m in shop["sink"].messages if address in m.rcpt_tos]
    return [m for m in found if isinstance(m, EmailMessage) and m["Auto-Submitted"] is None]


def test_reply_all_copies_the_others_but_never_our_own_mailbox(shop):
    first = _customer_mail(shop)
    lucia = _signed_in()
    page = lucia.get(f"/conversations/{first.conversation_id}/").content.decode()
    assert 'id="send-reply-all"' in page and "compras@customer.test" in page
    assert lucia.post(f"/conversations/{first.conversation_id}/reply/",
                      {"text": "La corregimos hoy.", "reply_all": "1"}).status_code == 302
    _deliver()
    (answer,) = _delivered_to(shop, "ana@customer.test")
    assert [a.addr_spec for a in answer["To"].addresses] == ["ana@customer.test"]
    assert [a.addr_spec for a in answer["Cc"].addresses] == ["compras@customer.test", "jefe@customer.test"]
    assert answer["In-Reply-To"] == "<factura@customer.test>"
    assert not [m for m in shop["sink"].messages if "sender@example.test" in m.rcpt_tos]
    reply = Message.objects.get(direction=Direction.OUTGOING, created_by__isnull=False)
    assert reply.conversation_id == first.conversation_id
    # The thread shows who each message was copied to: the customer's Cc and the reply's.
    thread = lucia.get(f"/conversations/{first.conversation_id}/").content.decode()
    copies = re.findall(r'<span class="thread-cc">([^<]*)</span>', thread)
    assert len(copies) == 2 and "jefe@customer.test" in copies[0] and "compras@customer.test" in copies[1]
    # A plain reply is to the customer alone.
    api = Client()
    api.force_login(shop["user"])
    sent = api.post(f"/api/v1/conversations/{first.conversation_id}/reply/", {"text": "Solo a Ana."},
                    content_type="application/json")
    assert sent.status_code == 202
    assert Message.objects.get(pk=sent.json()["id"]).cc == []


def test_forward_carries_the_original_and_its_attachment_and_joins_the_conversation(shop):
    first = _customer_mail(shop)
    lucia = _signed_in()
    assert lucia.post(f"/conversations/{first.conversation_id}/forward/",
                      {"to": "contabilidad@proveedor.test", "text": "¿Podéis revisarla?",
                       "message": str(first.pk)}).status_code == 302
    _deliver()
    (forward,) = _delivered_to(shop, "contabilidad@proveedor.test")
    assert str(forward["Subject"]) == "Fwd: Factura de noviembre"
    body = forward.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert text.index("¿Podéis revisarla?") < text.index("Forwarded message") < text.index("Adjunto la factura")
    assert "From: Ana <ana@customer.test>" in text
    (attached,) = list(forward.iter_attachments())
    assert attached.get_filename() == "factura.pdf" and attached.get_content() == b"%PDF-1.4 factura"
    sent = Message.objects.get(direction=Direction.OUTGOING, created_by__isnull=False)
    assert sent.conversation_id == first.conversation_id
    assert ConversationEvent.objects.filter(conversation_id=first.conversation_id, kind="forwarded").exists()
    first.conversation.refresh_from_db()
    assert first.conversation.status == "open"  # still the customer's turn to be answered

    refused = lucia.post(f"/conversations/{first.conversation_id}/forward/", {"to": "", "text": "x"}, follow=True)
    assert "Say whom to forward it to." in refused.content.decode()


def test_another_stores_agent_cannot_reply_all_or_forward(shop):
    first = _customer_mail(shop)
    other = Store.objects.create(name="Otra")
    user = User.objects.create_user("bruno", password="pw-bruno-123")
    Agent.objects.create(user=user).stores.add(other)
    bruno = Client()
    bruno.force_login(user)
    before = Message.objects.count()
    assert bruno.post(f"/conversations/{first.conversation_id}/forward/",
                      {"to": "yo@fuera.test", "message": str(first.pk)}).status_code == 404
    assert bruno.post(f"/api/v1/conversations/{first.conversation_id}/forward/", {"to": ["yo@fuera.test"]},
                      content_type="application/json").status_code == 404
    assert bruno.post(f"/conversations/{first.conversation_id}/reply/", {"text": "x", "reply_all": "1"}).status_code \
        == 404
    assert Message.objects.count() == before
    # A message id of another conversation is refused like a missing one.
    lucia = Client()
    lucia.force_login(shop["user"])
    other_conversation = _customer_mail_other(shop)
    wrong = lucia.post(f"/api/v1/conversations/{first.conversation_id}/forward/",
                       {"to": ["x@fuera.test"], "message": other_conversation.pk}, content_type="application/json")
    missing = lucia.post(f"/api/v1/conversations/{first.conversation_id}/forward/",
                         {"to": ["x@fuera.test"], "message": 2147483600}, content_type="application/json")
    assert wrong.status_code == 400 and wrong.json() == missing.json()


def _customer_mail_other(shop: dict[str, Any]) -> Message:
    mail = EmailMessage()
    mail["From"] = "beto@customer.test"
    mail["To"] = "sender@example.test"
    mail["Subject"] = "Otro asunto"
    mail.set_content("Nada que ver.")
    raw = store_raw(mail.as_bytes(), shop["account"])
    pipeline.run_pipeline(raw.pk)
    return Message.objects.get(raw=raw)
