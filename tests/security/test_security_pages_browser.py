"""The supervisor's Agents page and the recovery codes, used in headless Chromium (screenshots kept)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from buzon.crm.models import Agent
from buzon.web.models import RecoveryCodeDevice
from tests.security.conftest import World
from tests.support.browser import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_supervisor_sets_an_agents_status_and_group_in_the_browser(world: World, browser_page: Any):
    page = browser_page
    sign_in(page, "sara", "sara-pw-123")
    page.click("a[href='/settings/agents/']")  # in the sidebar for supervisors
    ana = world.agents["agent_a"]
    row = page.locator(f"#agent-{ana.pk}")
    expect(row).to_be_visible()
    expect(page.locator("#agent-list")).not_to_contain_text("bruno")
    row.locator("select[name=status]").select_option("lunch")
    row.locator(f"#group-{ana.pk}-{world.a.group.pk}").check()
    screenshot(page, "security-agents-page-supervisor")
    with page.expect_navigation():
        row.locator("button").click()
    expect(page.locator(f"#group-{ana.pk}-{world.a.group.pk}")).to_be_checked()
    fresh = Agent.objects.get(pk=ana.pk)
    assert fresh.status == "lunch" and list(fresh.groups.all()) == [world.a.group]


def test_recovery_codes_are_shown_once_and_sign_in_in_the_browser(browser_page: Any):
    page = browser_page
    user = User.objects.create_user("jefa", password="jefa-pw-123", is_staff=True)
    sign_in(page, "jefa", "jefa-pw-123")
    page.goto("/settings/two-factor/")
    device = TOTPDevice.objects.get(user=user)
    page.fill("#id_code", f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}")
    page.click("#totp-submit")
    expect(page.locator("#recovery-codes")).to_be_visible()
    codes = page.locator(".recovery-code").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[A-Z0-9]{5}-[A-Z0-9]{5}", c) for c in codes)
    screenshot(page, "security-recovery-codes-shown-once")
    page.reload()
    expect(page.locator("#recovery-unused")).to_contain_text("10")
    assert page.locator(".recovery-code").count() == 0

    page.context.clear_cookies()
    sign_in(page, "jefa", "jefa-pw-123")
    assert "/login/verify/" in page.url
    page.fill("#id_code", codes[0])
    page.click("#totp-verify")
    page.wait_for_load_state()
    assert "/login/verify/" not in page.url
    screenshot(page, "security-signed-in-with-a-recovery-code")
    assert RecoveryCodeDevice.objects.get(user=user).unused() == 9
