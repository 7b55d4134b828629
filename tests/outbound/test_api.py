"""POST /api/v1/messages/send/ and friends, through DRF with token authentication."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from buzon.crm.models import Ticket
from buzon.messages import targets
from buzon.messages.models import Message, MessageStatus
from buzon.outbound.models import EmailTemplate, OutgoingEmail
from buzon.outbound.sender import deliver_due

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(db: Any) -> APIClient:
    user = get_user_model().objects.create_user("agent", "agent@example.org", "pw", is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_send_returns_202_and_status_follows_delivery(api: APIClient, smtp_starttls: Any, make_account: Any,
                                                      pool: Any) -> None:
    account = make_account(smtp_starttls)
    payload = {"to": ["c@example.org"], "subject": "Hola", "text": "Cuerpo", "account": account.pk,
               "attachments": [{"filename": "a.txt", "content_base64": base64.b64encode(b"hi").decode(),
                                "mimetype": "text/plain"}]}
    response = api.post("/api/v1/messages/send/", payload, format="json")
    assert response.status_code == 202, response.content
    pk = response.json()["id"]
    assert response.json()["status"] == "queued"
    deliver_due(pool=pool)
    assert Message.objects.get(pk=pk).status == MessageStatus.SENT
    log = api.get(f"/api/v1/messages/{pk}/delivery/").json()
    assert [(a["outcome"], a["code"], a["server"]) for a in log] == [("sent", 250, f"localhost:{smtp_starttls.port}")]
    assert smtp_starttls.messages[0].message["Subject"] == "Hola"


def test_refusal_is_a_400_in_plain_words(api: APIClient, make_account: Any) -> None:
    account = make_account(confirmed=False)
    response = api.post("/api/v1/messages/send/", {"to": ["c@example.org"], "subject": "s", "text": "x",
                                                   "account": account.pk}, format="json")
    assert response.status_code == 400
    assert "has not been confirmed as a sender" in response.json()["detail"][0]
    assert not OutgoingEmail.objects.exists()


def test_send_with_template_and_record(api: APIClient, make_account: Any) -> None:
    make_account(default_outgoing=True)
    ticket = Ticket.objects.create(subject="Pedido 77")
    EmailTemplate.objects.create(key="ticket-reply", language="es", name="Respuesta",
                                 subject="Sobre {{ record.subject }}", body="Hola, sobre {{ record.subject }}.")
    response = api.post("/api/v1/messages/send/", {"to": ["c@example.org"], "template": "ticket-reply",
                                                   "language": "es", "record": {"type": "ticket", "id": ticket.pk}},
                        format="json")
    assert response.status_code == 202, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert message.subject == f"Sobre Pedido 77 {targets.record_token(ticket)}"
    assert message.text == "Hola, sobre Pedido 77."
    assert message.record == ticket


def test_template_preview_with_a_real_record(api: APIClient) -> None:
    ticket = Ticket.objects.create(subject="<b>Roto</b>")
    template = EmailTemplate.objects.create(key="k", language="en", name="n", subject="Re {{ record.subject }}",
                                            body="T: {{ record.subject }}", body_html="<p>{{ record.subject }}</p>")
    response = api.post(f"/api/v1/email-templates/{template.pk}/preview/", {"type": "ticket", "id": ticket.pk},
                        format="json")
    assert response.json() == {"subject": "Re <b>Roto</b>", "text": "T: <b>Roto</b>",
                               "html": "<p>&lt;b&gt;Roto&lt;/b&gt;</p>"}


def test_broken_template_is_refused(api: APIClient) -> None:
    response = api.post("/api/v1/email-templates/", {"key": "k", "language": "es", "name": "n",
                                                     "subject": "{% if %}", "body": "x"}, format="json")
    assert response.status_code == 400 and "subject" in response.json()


def test_sender_confirmation_over_the_api(api: APIClient, smtp_starttls: Any, make_account: Any) -> None:
    import re

    account = make_account(smtp_starttls, confirmed=False)
    assert api.post(f"/api/v1/sender-confirmations/{account.pk}/send/").status_code == 202
    body = smtp_starttls.messages[0].message.get_payload(decode=True)
    code = re.search(rb"\b(\d{6})\b", body)
    assert code is not None
    bad = api.post(f"/api/v1/sender-confirmations/{account.pk}/code/", {"code": "x"}, format="json")
    assert bad.status_code == 400
    ok = api.post(f"/api/v1/sender-confirmations/{account.pk}/code/", {"code": code.group(1).decode()},
                  format="json")
    assert ok.json() == {"confirmed": True}


def test_notifications_use_the_edited_template_with_fallback(make_account: Any) -> None:
    from buzon.messages.outbox import queue_outgoing

    make_account(default_outgoing=True)
    ticket = Ticket.objects.create(subject="Caja")
    fallback = queue_outgoing(to="agent@example.org", subject="New ticket", text="built-in", kind="notification",
                              template="ticket-assigned", record=ticket)
    assert fallback.text == "built-in"
    EmailTemplate.objects.create(key="ticket-assigned", language="es", name="n", subject="Nuevo: {{ record.subject }}",
                                 body="Te asignaron {{ record.subject }} ({{ agent }}).")
    templated = queue_outgoing(to="agent@example.org", subject="New ticket", text="built-in", kind="notification",
                               template="ticket-assigned", language="es", record=ticket, context={"agent": "Ana"})
    assert templated.subject.startswith("Nuevo: Caja") and templated.text == "Te asignaron Caja (Ana)."


def test_attachments_over_the_accounts_limit_are_refused_before_queueing(api: APIClient, make_account: Any) -> None:
    account = make_account(attachment_limit_mb=1)
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    payload = {"to": ["c@example.org"], "subject": "s", "text": "x", "account": account.pk,
               "attachments": [{"filename": "big.bin", "content_base64": big}]}
    response = api.post("/api/v1/messages/send/", payload, format="json")
    assert response.status_code == 400
    assert "more than the 1.0\xa0MB that sender@example.test may send" in response.json()["detail"][0]
    assert not OutgoingEmail.objects.exists() and not Message.objects.exists()
    payload["attachments"][0]["content_base64"] = base64.b64encode(b"x" * 1024 * 1024).decode()  # exactly 1 MB
    assert api.post("/api/v1/messages/send/", payload, format="json").status_code == 202


def test_the_api_shows_a_sent_messages_sender_as_a_mail_client_shows_it(
        smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    """A Spanish-speaking agent's mail leaves as "Marta Núñez vía Tienda Norte" (an RFC 2047 header);
    the messages API shows that name as written, in the list and in the message, not its encoded form."""
    from email import message_from_bytes, policy

    from buzon.core.models import UserPreferences

    account = make_account(smtp_starttls, display_name="Tienda Norte")
    user = get_user_model().objects.create_user("marta", "marta@example.org", "pw", is_staff=True,
                                                first_name="Marta", last_name="Núñez")
    UserPreferences.objects.create(user=user, language="es")
    client = APIClient()
    client.force_authenticate(user)
    response = client.post("/api/v1/messages/send/", {"to": ["c@example.org"], "subject": "Hola", "text": "Cuerpo",
                                                      "account": account.pk}, format="json")
    assert response.status_code == 202, response.content
    pk = response.json()["id"]
    deliver_due(pool=pool)
    sent = message_from_bytes(smtp_starttls.messages[0].data, policy=policy.default)
    headers = re.split(rb"\r?\n\r?\n", smtp_starttls.messages[0].data, maxsplit=1)[0]
    assert b"From: Marta =?utf-8?" in headers  # the name on the wire: RFC 2047
    shown = f"Marta Núñez vía Tienda Norte <{account.email_address}>"
    assert str(sent["From"]) == shown
    assert client.get(f"/api/v1/messages/{pk}/").json()["from"] == shown
    assert [m["from"] for m in client.get("/api/v1/messages/").json()["results"] if m["id"] == pk] == [shown]
