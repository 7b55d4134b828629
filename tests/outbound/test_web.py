"""Compose, template editor with preview, deliverability and sender confirmation pages.

The compose and template-preview flows run in headless Chromium (screenshots in test-artifacts/).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from buzon.crm.models import Ticket
from buzon.mailboxes.models import EmailDomain
from buzon.messages.models import Message, MessageStatus
from buzon.outbound.models import EmailTemplate
from buzon.outbound.sender import deliver_due
from tests.outbound.dns_server import DNSServer
from tests.support.browser import screenshot, sign_in


@pytest.fixture
def admin(db: Any) -> Any:
    return get_user_model().objects.create_user("admin", "admin@example.test", "admin-pass", is_staff=True,
                                                first_name="Ada", last_name="Admin")


@pytest.fixture
def staff_client(admin: Any) -> Client:
    client = Client()
    client.force_login(admin)
    return client


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_compose_with_template_in_the_browser(browser_page: Any, admin: Any, smtp_starttls: Any,
                                              make_account: Any, pool: Any) -> None:
    page = browser_page
    account = make_account(smtp_starttls, default_outgoing=True, add_signature=True, signature="Equipo")
    ticket = Ticket.objects.create(subject="Pedido 42 roto")
    EmailTemplate.objects.create(key="ticket-reply", language="en", name="Ticket reply",
                                 subject="About: {{ record.subject }}", body="Hello, we are on {{ record.subject }}.")
    sign_in(page, "admin", "admin-pass")
    page.goto(f"/compose/?record=ticket:{ticket.pk}")
    page.select_option("#id_template", label="Ticket reply (en)")
    # A locator wait, not wait_for_function: the CSP forbids evaluating strings as script.
    expect(page.locator("#id_subject")).to_have_value(re.compile(r"^About:"))
    assert page.input_value("#id_text") == "Hello, we are on Pedido 42 roto."
    page.fill("#id_to", "customer@example.org")
    screenshot(page, "outbound-01-compose")
    page.click("#send")
    page.wait_for_selector("#status")
    message = Message.objects.get(subject__startswith="About: Pedido 42 roto")
    assert message.account == account and message.record == ticket
    assert page.inner_text("#status") == "Queued"
    deliver_due(pool=pool)
    page.reload()
    assert page.inner_text("#status") == "Sent"
    assert "250" in page.inner_text("#attempts")
    screenshot(page, "outbound-02-sent")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_template_editor_preview_with_a_real_record(browser_page: Any, admin: Any) -> None:
    page = browser_page
    ticket = Ticket.objects.create(subject="<script>alert(1)</script>Factura")
    sign_in(page, "admin", "admin-pass")
    page.goto("/settings/email/templates/new/")
    page.fill("#id_name", "Respuesta")
    page.fill("#id_key", "respuesta")
    page.select_option("#id_language", "es")
    page.fill("#id_subject", "Re: {{ record.subject }}")
    page.fill("#id_body", "Hola, sobre {{ record.subject }}.")
    page.click("#save")
    page.wait_for_selector("#preview-form")
    page.select_option("#id_record_type", "ticket")
    page.fill("#id_record_id", str(ticket.pk))
    page.fill("#id_body", "Cambiado: {{ record.subject }}")  # the preview shows unsaved edits
    page.click("#preview-button")
    page.wait_for_selector("#preview-subject")
    assert page.inner_text("#preview-subject") == f"Re: {ticket.subject}"
    assert page.inner_text("#preview-text") == f"Cambiado: {ticket.subject}"
    assert page.evaluate("window.alerted === undefined")  # shown as text, never run
    screenshot(page, "outbound-03-template-preview")


@pytest.mark.django_db
def test_unconfirmed_sender_is_flagged_and_refused_on_compose(staff_client: Client, smtp_starttls: Any,
                                                              make_account: Any) -> None:
    account = make_account(smtp_starttls, confirmed=False)
    page = staff_client.get("/compose/")
    assert f'data-unconfirmed="{account.email_address}"'.encode() in page.content
    response = staff_client.post("/compose/", {"account": account.pk, "to": "c@example.org", "subject": "s",
                                               "text": "x"})
    assert response.status_code == 200
    assert b"has not been confirmed as a sender yet" in response.content
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_compose_refuses_attachments_over_the_limit_before_queueing(staff_client: Client, smtp_starttls: Any,
                                                                    make_account: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    account = make_account(smtp_starttls, attachment_limit_mb=1)
    big = SimpleUploadedFile("big.pdf", b"x" * (1024 * 1024 + 1), content_type="application/pdf")
    response = staff_client.post("/compose/", {"account": account.pk, "to": "c@example.org", "subject": "s",
                                               "text": "x", "attachments": [big]})
    assert response.status_code == 200
    assert "more than the 1.0\xa0MB that sender@example.test may send" in response.content.decode()
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_sender_confirmation_page_sends_and_accepts_the_code(staff_client: Client, smtp_starttls: Any,
                                                            make_account: Any) -> None:
    import re

    from buzon.outbound import confirm

    account = make_account(smtp_starttls, confirmed=False)
    url = f"/settings/email/accounts/{account.pk}/confirm-sender/"
    staff_client.post(url, {"action": "send"})
    code = re.search(rb"\b(\d{6})\b", smtp_starttls.messages[0].message.get_payload(decode=True))
    assert code is not None
    wrong = staff_client.post(url, {"action": "code", "code": "000000" if code.group(1) != b"000000" else "111111"})
    assert b"That code is not right" in wrong.content
    staff_client.post(url, {"action": "code", "code": code.group(1).decode()})
    assert confirm.is_confirmed(account)


@pytest.mark.django_db
def test_deliverability_page_generates_key_and_checks_dns(staff_client: Client, settings: Any) -> None:
    domain = EmailDomain.objects.create(domain_name="example.test", smtp_host="smtp.example.test")
    dns = DNSServer().start()
    settings.OUTBOUND_DNS_SERVERS = [dns.address]
    try:
        url = f"/settings/email/deliverability/{domain.pk}/"
        assert b"Generate DKIM key" in staff_client.get(url).content
        staff_client.post(url, {"action": "generate"})
        page = staff_client.get(url).content.decode()
        assert "buzon._domainkey.example.test" in page and "v=DKIM1; k=rsa; p=" in page
        dns.txt["example.test"] = ["v=spf1 a:smtp.example.test ~all"]
        checked = staff_client.post(url, {"action": "check"}, HTTP_HX_REQUEST="true").content.decode()
        assert 'data-record="spf"' in checked
        assert checked.count('data-status="ok"') == 1 and checked.count('data-status="missing"') == 2
    finally:
        dns.stop()


@pytest.mark.django_db
def test_outgoing_page_shows_a_failure_in_plain_words(staff_client: Client, smtp_starttls: Any, make_account: Any,
                                                      pool: Any) -> None:
    from buzon.messages.outbox import queue_outgoing

    account = make_account(smtp_starttls)
    smtp_starttls.handler.fail_data.append("550 5.7.1 Message rejected as spam")
    message = queue_outgoing(to="c@example.org", subject="s", text="x", account=account)
    deliver_due(pool=pool)
    assert Message.objects.get(pk=message.pk).status == MessageStatus.SEND_FAILED
    page = staff_client.get(f"/sent/{message.pk}/").content.decode()
    assert "The server refused the message permanently: 550 5.7.1 Message rejected as spam" in page
