"""An agent works a conversation in Chromium: opens the conversations list, opens the customer's
conversation, replies in the inline box; the reply reaches the SMTP server answering the customer's
mail, shows in the thread, and the ticket is Replied; the customer's answer, through the pipeline,
lands in the same conversation and opens it again (screenshots conversations-*)."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest

from buzon.crm.models import Ticket
from buzon.messages.models import Direction, Message
from buzon.outbound.sender import deliver_due
from buzon.outbound.smtp import SMTPPool
from tests.inbound.test_conversation_answers import PASSWORD, _receive
from tests.support.browser import screenshot, sign_in


@pytest.mark.django_db(transaction=True)
def test_an_agent_replies_inline_and_the_customers_answer_lands_in_the_conversation(browser_page: Any,
                                                                                    shop: dict[str, Any]) -> None:
    first = _receive(shop, subject="Pedido roto", body="La taza llegó rota.", message_id="<roto@customer.test>")
    ticket = first.record
    page = browser_page
    sign_in(page, "lucia", PASSWORD)
    page.goto("/conversations/")
    row = page.locator(f'tr[data-conversation="{first.conversation_id}"]')
    assert "La taza llegó rota." in row.inner_text() and row.locator(".unread").count() == 1
    screenshot(page, "conversations-01-list")
    row.locator("a").click()
    page.wait_for_selector("#reply-form")
    assert "La taza llegó rota." in page.inner_text("#thread")
    page.fill("#reply-text", "Le enviamos otra hoy mismo.")
    screenshot(page, "conversations-02-reply")
    page.click("#send-reply")
    page.wait_for_load_state()
    page.wait_for_selector(".thread-message[data-direction='out']")
    assert "Le enviamos otra hoy mismo." in page.inner_text("#thread")
    reply = Message.objects.get(direction=Direction.OUTGOING, created_by__isnull=False)
    assert reply.conversation_id == first.conversation_id
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.REPLIED

    pool = SMTPPool(per_account=2, timeout=10)
    try:
        deliver_due(pool=pool)
    finally:
        pool.shutdown()
    mails = [message_from_bytes(m.data, policy=default) for m in shop["sink"].messages]
    ours = [m for m in mails if "Le enviamos otra" in m.get_body(("plain",)).get_content()]
    assert len(ours) == 1 and ours[0]["In-Reply-To"] == "<roto@customer.test>"
    assert "ana@customer.test" in str(ours[0]["To"])

    _receive(shop, subject="Re: Pedido roto", body="¡Gracias!", headers={"In-Reply-To": reply.message_id})
    page.reload()
    thread = page.inner_text("#thread")
    assert thread.index("La taza llegó rota.") < thread.index("Le enviamos otra hoy mismo.") < thread.index("¡Gracias!")
    assert page.input_value("#conversation-status-select") == "open"
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    screenshot(page, "conversations-03-answered")
