"""In Chromium, with 80 accounts in the agent's store: the inbox's account filter shows 50 of them and
a box; typing part of an address offers the matching ones (htmx), choosing one filters the list
(screenshot inbox-account-filter)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from buzon.mailboxes.models import EmailAccount
from buzon.workspace import reads
from tests.security.conftest import World
from tests.support.browser import screenshot, sign_in


@pytest.mark.django_db(transaction=True)
def test_an_agent_finds_one_account_among_many(browser_page: Any, world: World) -> None:
    EmailAccount.objects.bulk_create([EmailAccount(email_address=f"buzon{i:03d}@tienda-a.test", store=world.a.store)
                                      for i in range(80)])
    page = browser_page
    sign_in(page, "ana", "ana-pw-123")
    page.goto("/conversations/?view=")
    assert page.locator("#f-account option").count() == 51
    page.fill("#f-account-find", "ventas")
    expect(page.locator("#f-account option")).to_have_count(2)  # the page's CSP allows no eval: polled here
    assert page.locator("#f-account option").all_inner_texts() == ["All", "ventas@tienda-a.test"]
    page.select_option("#f-account", label="ventas@tienda-a.test")
    screenshot(page, "inbox-account-filter")
    page.click("#conversation-filters button.btn-primary")
    page.wait_for_url(f"**account={world.a.account.pk}**")
    assert "find=" not in page.url  # the box is not one of the list's filters
    shown = {int(pk) for pk in page.locator("[data-conversation]").evaluate_all(
        "rows => rows.map(r => r.dataset.conversation)")}
    expected = reads.filtered(world.users["agent_a"], account=str(world.a.account.pk))
    assert shown == set(expected.values_list("pk", flat=True)) and shown
    assert page.locator("#f-account option:checked").inner_text() == "ventas@tienda-a.test"
