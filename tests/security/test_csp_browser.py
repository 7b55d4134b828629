"""Every main page in headless Chromium under the Content-Security-Policy: no violation is reported
and the page still works (Bootstrap dropdowns, htmx requests, the former inline handlers)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from buzon.outbound.models import EmailTemplate
from tests.security.conftest import World
from tests.support.browser import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Recorded before any page script runs (init scripts are not subject to the page's CSP).
WATCH = ("window.__csp = [];"
         "document.addEventListener('securitypolicyviolation',"
         " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' '"
         " + e.sourceFile + ':' + e.lineNumber));")


def _violation(text: str) -> bool:
    # A cid: image inside the sandboxed message frame cannot load in any browser (the inbox does not
    # yet point cid: references at the attachment); Chromium words that refusal as a CSP message.
    return "Content Security Policy" in text and "'cid:" not in text


def _pages(world: World) -> list[str]:
    template = EmailTemplate.objects.first()
    assert template is not None
    return ["/", "/inbox/", f"/inbox/{world.a.message.pk}/", "/customers/", "/tickets/", "/job-applicants/",
            "/notifications/", f"/compose/?record=ticket:{world.a.ticket.pk}", f"/sent/{world.a.sent.pk}/",
            "/settings/email/", "/settings/email/accounts/", f"/settings/email/accounts/{world.a.account.pk}/edit/",
            "/settings/email/accounts/new/", "/settings/email/domains/", "/settings/stores/",
            "/settings/email/templates/", f"/settings/email/templates/{template.pk}/",
            "/settings/email/deliverability/", "/settings/processes/", "/settings/audit/", "/settings/two-factor/",
            "/settings/agents/",
            "/help/troubleshooting/", "/api/docs/"]


def test_main_pages_report_no_csp_violation_and_still_work(world: World, browser_page: Any):
    page = browser_page
    page.add_init_script(WATCH)
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if _violation(msg.text) else None)
    sign_in(page, "root", "root-pw-123")
    violations: dict[str, list[str]] = {}
    for url in _pages(world):
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        page.wait_for_load_state("networkidle")
        found = page.evaluate("window.__csp")
        if found:
            violations[url] = found
    assert not violations and not console, (violations, console)

    # Bootstrap runs: the user menu opens.
    page.goto("/")
    page.click("#bz-user")
    page.wait_for_selector("#bz-two-factor", state="visible")

    # The compose script (now web/behaviours.js) fills the message from a template over htmx.
    page.goto(f"/compose/?record=ticket:{world.a.ticket.pk}")
    template = EmailTemplate.objects.get(key="security-test")
    with page.expect_response(lambda r: "/compose/template/" in r.url) as answered:
        page.select_option("#id_template", str(template.pk))
    assert answered.value.status == 200
    # A locator assertion, not wait_for_function(): that evaluates a string, which the CSP forbids.
    expect(page.locator("#compose-body textarea")).to_have_value(re.compile("Hola"))
    screenshot(page, "security-compose-template-under-csp")

    # The former onchange="this.form.submit()" status filter still submits.
    page.goto("/tickets/")
    with page.expect_navigation():
        page.select_option("select[data-bz-autosubmit]", "closed")
    assert "status=closed" in page.url
    assert not page.evaluate("window.__csp") and not console
