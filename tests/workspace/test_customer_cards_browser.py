"""An agent works a customer's card in Chromium: opens it from the Customers list, sees the customer's
conversations, merges the second card the same person got by writing from another address, and
starts a new mail to them from the card; the mail reaches the SMTP server (screenshots customer-card-*)."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest

from buzon.crm.models import Customer
from buzon.messages.models import Direction, Message
from buzon.outbound.sender import deliver_due
from buzon.outbound.smtp import SMTPPool
from tests.inbound.test_conversation_answers import PASSWORD, _receive
from tests.support.browser import screenshot, sign_in


@pytest.mark.django_db(transaction=True)
def test_an_agent_opens_a_card_merges_the_second_one_and_writes_to_the_customer(browser_page: Any,
                                                                                 shop: dict[str, Any]) -> None:
    first = _receive(shop, subject="Pedido roto", body="La taza llegó rota.")
    second = _receive(shop, sender="Ana Pérez <ana.trabajo@customer.test>", subject="Factura",
                      body="Necesito la factura.")
    card, other = first.customer, second.customer
    assert card is not None and other is not None and card.pk != other.pk and card.store_id == other.store_id
    page = browser_page
    sign_in(page, "lucia", PASSWORD)
    page.goto("/customers/")
    page.locator(f'#records-table a.card-link[href="/customers/{card.pk}/"]').click()
    page.wait_for_selector("#customer-card")
    assert "ana@customer.test" in page.inner_text("#customer-addresses")
    rows = page.locator("#customer-conversations tbody tr")
    assert rows.count() == 1 and "Pedido roto" in rows.first.inner_text()
    # The customer's mail and the automatic answer to it.
    assert page.inner_text("#customer-message-count") == "2 messages"
    screenshot(page, "customer-card-01-card")

    page.click("#customer-merge summary")
    page.select_option("#customer-merge-other", str(other.pk))
    screenshot(page, "customer-card-02-merge")
    page.click("#customer-merge-submit")
    page.wait_for_selector(".alert-success, #bz-toasts .toast")
    assert page.url.endswith(f"/customers/{card.pk}/")
    addresses = page.inner_text("#customer-addresses")
    assert "ana@customer.test" in addresses and "ana.trabajo@customer.test" in addresses
    subjects = page.inner_text("#customer-conversations")
    assert "Pedido roto" in subjects and "Factura" in subjects
    assert page.inner_text("#customer-message-count") == "4 messages"
    assert not Customer.objects.filter(pk=other.pk).exists()
    screenshot(page, "customer-card-03-merged")

    page.click("#customer-compose")
    page.wait_for_selector("#compose-form")
    assert page.input_value("#id_to") == "ana@customer.test"
    page.fill("#id_subject", "Su pedido")
    page.fill("#id_text", "Le escribimos por su pedido.")
    screenshot(page, "customer-card-04-compose")
    page.click("#send")
    page.wait_for_load_state()
    sent = Message.objects.get(direction=Direction.OUTGOING, created_by__isnull=False)
    assert sent.to == ["ana@customer.test"] and sent.subject == "Su pedido"
    pool = SMTPPool(per_account=2, timeout=10)
    try:
        deliver_due(pool=pool)
    finally:
        pool.shutdown()
    mails = [message_from_bytes(m.data, policy=default) for m in shop["sink"].messages]
    ours = [m for m in mails if m["Subject"] == "Su pedido"]
    assert len(ours) == 1 and "ana@customer.test" in str(ours[0]["To"])
