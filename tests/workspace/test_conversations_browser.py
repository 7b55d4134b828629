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


@pytest.mark.django_db(transaction=True)
def test_a_click_anywhere_on_a_row_opens_that_rows_conversation(browser_page: Any, shop: dict[str, Any]) -> None:
    """Each row of the list (and of the customer card's list) is a link to its own conversation: the
    subject, or any other cell but the tick box. (Each row's link covered the whole table, so every
    click opened the last row's conversation.)"""
    rows = [_receive(shop, subject=f"Consulta {i}", body=f"Pregunta número {i}.",
                     message_id=f"<consulta-{i}@customer.test>").conversation_id for i in range(3)]
    page = browser_page
    sign_in(page, "lucia", PASSWORD)
    assert len(set(rows)) == 3
    customer = Message.objects.filter(conversation_id=rows[0], direction=Direction.INCOMING).get().customer_id
    for listing in ("/conversations/", f"/customers/{customer}/"):
        for conversation in rows:
            for cell in ("a", "td:last-child"):
                page.goto(listing)
                box = page.locator(f'tr[data-conversation="{conversation}"] {cell}').bounding_box()
                assert box is not None
                page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # where a person clicks
                page.wait_for_url(f"**/conversations/{conversation}/")
    page.goto("/conversations/")
    page.locator(f'tr[data-conversation="{rows[1]}"] .bulk-pick').click()  # the tick box ticks, opens nothing
    assert page.url.endswith("/conversations/") and page.locator(".bulk-pick:checked").count() == 1
