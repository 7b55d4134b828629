"""In headless Chromium: an agent signs in (online), picks Spanish in the top bar, reads the bell and the
notifications page in Spanish, signs out (offline); signing in again from a fresh browser brings her
language back, and the bell keeps polling her session."""

from __future__ import annotations

import pytest

from buzon.core.models import SignedInSession, UserPreferences
from buzon.crm.models import Agent
from buzon.inbound import pipeline
from tests.inbound.helpers import free_agent_in_group, mail, store_raw, support_account
from tests.support.browser import new_page, screenshot, sign_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_language_notifications_and_sign_out_in_a_real_browser(chromium, live_server):
    user, agent, group = free_agent_in_group()
    account = support_account(agent_group=group, notify_agent=True)
    pipeline.run_pipeline(store_raw(mail(subject="¿Dónde está mi pedido?"), account).pk)

    page = new_page(chromium, live_server.url)  # an English browser
    sign_in(page, "lucia", "pw-lucia-123")
    agent.refresh_from_db()
    assert agent.online and SignedInSession.objects.filter(user=user).count() == 1
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#bell").get_attribute("hx-get") is None  # the poll sits on the bell's list item
    assert page.locator("li[hx-get='/notifications/bell/']").count() == 1

    page.click("#bz-language")
    page.click("button[name='language'][value='es']")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "es"
    assert UserPreferences.objects.get(user=user).language == "es"
    assert page.locator("#bell-count").inner_text() == "2"
    page.click("#bell")
    page.wait_for_load_state()
    items = page.locator("#notification-list a").all_inner_texts()
    assert any("Se le ha asignado el cliente Ana Pérez." in text for text in items), items
    assert any("Nuevo correo de Ana Pérez: ¿Dónde está mi pedido?" in text for text in items), items
    screenshot(page, "notifications-es")

    page.click("#bz-user")
    page.click("#bz-sign-out")
    page.wait_for_load_state()
    agent.refresh_from_db()
    assert not agent.online and not SignedInSession.objects.exists()
    page.context.close()

    fresh = new_page(chromium, live_server.url)  # another browser, English again, no cookies
    sign_in(fresh, "lucia", "pw-lucia-123")
    assert fresh.locator("html").get_attribute("lang") == "es"
    assert Agent.objects.get(pk=agent.pk).online
    fresh.context.close()
