"""In Chromium: an agent writes an internal note mentioning a colleague; the colleague, in their own
browser, sees the bell's count and the note in the thread. The agent inserts a canned response into
the reply by typing "/" and its shortcut, sends it, and the mail reaches the SMTP sink with the
canned text and without the note (screenshots notes-*)."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest
from django.contrib.auth.models import User

from buzon.crm.models import Agent
from buzon.messages.models import Direction, Message
from buzon.outbound.sender import deliver_due
from buzon.outbound.smtp import SMTPPool
from buzon.workspace.models import CannedResponse, ConversationNote
from tests.inbound.test_conversation_answers import PASSWORD, _receive
from tests.support.browser import new_page, screenshot, sign_in


@pytest.mark.django_db(transaction=True)
def test_a_note_mentions_a_colleague_and_a_canned_response_goes_out_in_the_reply(
        browser_page: Any, chromium: Any, live_server: Any, shop: dict[str, Any]) -> None:
    pedro = User.objects.create_user("pedro", email="pedro@shop.test", password=PASSWORD, first_name="Pedro")
    colleague = Agent.objects.create(user=pedro)
    colleague.stores.add(shop["account"].store)
    CannedResponse.objects.create(owner=shop["user"], shortcut="envio", title="Envío en camino",
                                  text="Su pedido sale hoy y llega en 48 horas.")
    first = _receive(shop, subject="¿Dónde está mi pedido?", body="No ha llegado.", message_id="<donde@customer.test>")

    page = browser_page
    sign_in(page, "lucia", PASSWORD)
    page.goto(f"/conversations/{first.conversation_id}/")
    page.fill("#note-text", "@pedro ¿puedes mirar el almacén? <b>urgente</b>")
    page.click("#add-note")
    page.wait_for_selector(".thread-note")
    note = page.locator(".thread-note")
    assert "<b>urgente</b>" in note.inner_text() and note.locator(".mention").inner_text() == "@pedro"
    assert ConversationNote.objects.filter(conversation_id=first.conversation_id).count() == 1

    # "/" and the start of the shortcut lists it; Enter puts its text in place of "/env".
    # A locator wait, not wait_for_function: the CSP forbids evaluating strings as script, which it
    # does whenever the list has not loaded at its first look.
    page.locator("#canned-select[data-bz-loaded='1']").wait_for(state="attached")
    page.click("#reply-text")
    page.keyboard.type("Hola Ana. /env")
    page.wait_for_selector(".canned-suggestion[data-shortcut='envio']")
    screenshot(page, "notes-01-note-and-canned")
    page.keyboard.press("Enter")
    assert page.input_value("#reply-text") == "Hola Ana. Su pedido sale hoy y llega en 48 horas."
    page.click("#send-reply")
    page.wait_for_selector(".thread-message[data-direction='out']")
    thread = page.inner_text("#thread")
    assert thread.index("No ha llegado.") < thread.index("¿puedes mirar el almacén?") < thread.index("sale hoy")

    other = new_page(chromium, live_server.url)
    try:
        sign_in(other, "pedro", PASSWORD)
        other.goto("/conversations/")
        assert other.inner_text("#bell-count") == "1"
        other.click("#bell")
        other.click(f"a[href='/conversations/{first.conversation_id}/']")
        other.wait_for_selector(".thread-note")
        assert "¿puedes mirar el almacén?" in other.inner_text(".thread-note")
        assert "lucia added a note." in other.inner_text("#history")
        screenshot(other, "notes-02-colleague")
    finally:
        other.context.close()

    pool = SMTPPool(per_account=2, timeout=10)
    try:
        deliver_due(pool=pool)
    finally:
        pool.shutdown()
    reply = Message.objects.get(direction=Direction.OUTGOING, created_by__isnull=False)
    assert reply.conversation_id == first.conversation_id
    mails = [message_from_bytes(m.data, policy=default) for m in shop["sink"].messages]
    ours = [m for m in mails if "sale hoy y llega en 48 horas" in m.get_body(("plain",)).get_content()]
    assert len(ours) == 1 and ours[0]["In-Reply-To"] == "<donde@customer.test>"
    assert all("almacén" not in m.as_string() for m in mails)  # the note never leaves
