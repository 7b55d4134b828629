"""The agent's inbox pages: filters, safe rendering with remote images blocked, attachments,
records, notifications and the agent's own status; one pass in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from buzon.crm.models import Agent, Notification, Store
from buzon.inbound import pipeline
from buzon.messages.models import Attachment, Message
from tests.inbound.helpers import free_agent_in_group, mail, store_raw, support_account
from tests.support.browser import screenshot, sign_in

DATA = Path(__file__).resolve().parents[1] / "data" / "parse"

HOSTILE = (b"From: promo@example.test\r\nTo: support@shop.test\r\nSubject: Oferta\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           b"<p onclick=\"x()\">Hola</p><script>alert(1)</script><img src=\"https://tracker.test/p.gif\">\r\n")


@pytest.fixture
def agent_user(db):
    return free_agent_in_group()


def _store_of(agent: Agent) -> Store:
    """Mail reaches an agent through their store or group (store-less, group-less mail is not everyone's)."""
    store = Store.objects.create(name="Tienda")
    agent.stores.add(store)
    return store


@pytest.mark.django_db
def test_inbox_filters_message_rendering_and_attachment(client, agent_user):
    user, agent, group = agent_user
    account = support_account(agent_group=group, notify_agent=True)
    pipeline.run_pipeline(store_raw(mail(subject="Pedido roto"), account).pk)
    sales = support_account(email_address="ventas@shop.test", store=_store_of(agent))
    pipeline.run_pipeline(store_raw(HOSTILE, sales).pk)
    pipeline.run_pipeline(store_raw((DATA / "rfc2231-inline-winmail.eml").read_bytes(), account).pk)
    client.force_login(user)
    mine = client.get("/inbox/?show=mine").content.decode()
    assert "Pedido roto" in mine and "Oferta" not in mine
    assert "Oferta" in client.get("/inbox/?show=unassigned").content.decode()
    hostile = Message.objects.get(subject="Oferta")
    page = client.get(f"/inbox/{hostile.pk}/").content.decode()
    assert "alert(1)" not in page and "onclick" not in page
    assert "data-blocked-src" in page and 'id="show-images"' in page and 'sandbox=""' in page
    assert "data-blocked-src" not in client.get(f"/inbox/{hostile.pk}/?images=1").content.decode()
    pdf = Attachment.objects.get(filename="Factura año 2026.pdf")
    download = client.get(f"/inbox/attachments/{pdf.pk}/")
    assert download.status_code == 200 and download.content == b"%PDF-1.4\n"
    assert download["Content-Type"] == "application/octet-stream" and "attachment;" in download["Content-Disposition"]


@pytest.mark.django_db
def test_records_notifications_and_status_pages(client, agent_user):
    user, agent, group = agent_user
    pipeline.run_pipeline(store_raw(mail(subject="Ayuda"), support_account(agent_group=group, notify_agent=True)).pk)
    client.force_login(user)
    assert "Ayuda" in client.get("/tickets/").content.decode()
    assert "ana@customer.test" in client.get("/customers/").content.decode()
    assert client.get("/job-applicants/").status_code == 200
    assert Notification.objects.filter(user=user, read_at__isnull=True).count() == 2
    assert "Ayuda" in client.get("/notifications/").content.decode()
    client.post("/notifications/read/")
    assert not Notification.objects.filter(user=user, read_at__isnull=True).exists()
    client.post("/agent/status/", {"status": "lunch", "next": "/inbox/"})
    agent.refresh_from_db()
    assert agent.status == "lunch"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_inbox_in_a_real_browser(browser_page, agent_user):
    user, agent, group = agent_user
    account = support_account(agent_group=group, notify_agent=True)
    pipeline.run_pipeline(store_raw(mail(subject="¿Dónde está mi pedido?"), account).pk)
    pipeline.run_pipeline(store_raw(HOSTILE, account).pk)
    page = browser_page
    sign_in(page, "lucia", "pw-lucia-123")
    page.goto("/inbox/")
    assert page.locator("#inbox-list a").count() == 2
    screenshot(page, "inbox-list")
    page.click("text=Oferta")
    page.wait_for_selector("#images-blocked", state="visible")  # the message's page, loaded (a loaded machine is slow)
    assert page.locator("#customer-card").is_visible() and page.locator("#decisions li").count() >= 5
    screenshot(page, "inbox-message")
    page.select_option("#status-select", "busy") if page.locator("#status-select").count() else None


def test_every_image_source_but_the_message_own_is_held_back_until_asked():
    """However the sender spells it (a leading space, upper case, //host, a relative path), an image
    source is a request the browser would make: only cid: parts and inline data stay as sources."""
    from buzon.inbound.mail.htmltext import sanitise
    from buzon.web.views_inbox import _safe_html

    body = (Path(__file__).resolve().parents[1] / "data" / "hostile" / "10-remote-media.eml").read_text()
    html = sanitise(body.split("\n\n", 1)[1]) + '<img src="data:image/gif;base64,R0lGODlh">'
    message = Message(html=html)
    blocked = _safe_html(message, show_images=False)
    sources = [s.strip() for s in re.findall(r'<img\b[^>]*?\ssrc="([^"]*)"', blocked)]
    assert sorted(sources) == ["cid:logo@attacker.test", "data:image/gif;base64,R0lGODlh"], sources
    assert 'data-blocked-src="http://evil.example/leading-space.gif"' in blocked
    assert 'data-blocked-src="x.gif"' in blocked
    assert _safe_html(message, show_images=True) == html
