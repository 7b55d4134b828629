"""Links in mail start with the address people reach Buzón at: BUZON_BASE_URL when set, else the
address the request that made them came to; in-app links are paths; administrators of a production
site without BUZON_BASE_URL are told on the home page (the process side: tests/ops/test_link_address.py)."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from buzon.crm.models import Agent, Store
from buzon.inbound import pipeline
from buzon.outbound.sender import deliver_due
from tests.inbound.helpers import free_agent_in_group, mail, store_raw

pytestmark = pytest.mark.django_db


@pytest.fixture
def unset(settings: Any) -> Any:
    """A production site (not DEBUG) that has not said its public address."""
    settings.BASE_URL_SET, settings.BASE_URL, settings.DEBUG = False, "http://localhost:8000", False
    settings.ALLOWED_HOSTS = ["localhost", "testserver", "buzon.lan"]
    return settings


def links(data: bytes) -> list[str]:
    """Every link a reader's client finds: the List-Unsubscribe URL and those in each text part."""
    parsed = message_from_bytes(data, policy=default)
    texts = [str(part.get_content()) for part in parsed.walk() if part.get_content_maintype() == "text"]
    return re.findall(r'https?://[^\s"<>]+', "\n".join([str(parsed["List-Unsubscribe"]), *texts]))


@pytest.mark.parametrize(("configured", "expected"), [
    ("", "http://buzon.lan:8443/"),  # unset: where the agent reached Buzón
    ("https://buzon.example.com", "https://buzon.example.com/"),  # set: always that
])
def test_mail_queued_through_a_request_links_where_people_reach_buzon(
        unset: Any, smtp_starttls: Any, make_account: Any, pool: Any, configured: str, expected: str) -> None:
    if configured:
        unset.BASE_URL_SET, unset.BASE_URL = True, configured
    store = Store.objects.create(name="Tienda Norte")
    account = make_account(smtp_starttls, store=store, unsubscribe_link=True, track_opens=True)
    agent = get_user_model().objects.create_user("lucia", "lucia@shop.test", "pw-lucia-123")
    Agent.objects.create(user=agent).stores.add(store)
    api = APIClient()
    api.force_authenticate(agent)
    queued = api.post("/api/v1/messages/send/", {"to": ["cliente@example.org"], "subject": "Pedido",
                                                 "text": "Enviado.", "account": account.pk},
                      format="json", HTTP_HOST="buzon.lan:8443")
    assert queued.status_code == 202, queued.content
    assert deliver_due(pool=pool).sent == 1
    found = links(smtp_starttls.messages[0].data)
    # The header, the link in each body and the pixel: every one where the reader can open it.
    assert len(found) >= 4 and all(link.startswith(expected) for link in found), found


def test_sender_confirmation_link_from_the_page_it_was_asked_on(unset: Any, smtp_starttls: Any,
                                                              make_account: Any) -> None:
    account = make_account(smtp_starttls, confirmed=False)
    admin = get_user_model().objects.create_user("admin", "admin@shop.test", "pw", is_staff=True)
    client = Client(HTTP_HOST="buzon.lan:8443")
    client.force_login(admin)
    client.post(f"/settings/email/accounts/{account.pk}/confirm-sender/", {"action": "send"})
    text = message_from_bytes(smtp_starttls.messages[0].data, policy=default).get_body(("plain",)).get_content()
    link = re.search(r"(http\S+/confirm-sender/\S+/)", text)  # type: ignore[union-attr]
    assert link is not None and link.group(1).startswith("http://buzon.lan:8443/confirm-sender/")
    assert client.get(link.group(1).removeprefix("http://buzon.lan:8443")).status_code == 200


def test_notifications_link_to_a_path_in_the_app_and_the_whole_address_in_mail(
        unset: Any, smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    unset.BASE_URL = "http://buzon.lan:8123"  # what `buzon run --port 8123` passes its worker
    user, _agent, group = free_agent_in_group()
    account = make_account(smtp_starttls, default_outgoing=True, incoming_enabled=True, agent_group=group,
                           notify_agent=True)
    pipeline.run_pipeline(store_raw(mail(to=account.email_address), account).pk)
    bell = list(user.notifications.values_list("url", flat=True))
    assert bell and all(re.fullmatch(r"/inbox/\d+/", url) for url in bell), bell
    assert deliver_due(pool=pool).sent >= 1
    to_agent = [message_from_bytes(m.data, policy=default) for m in smtp_starttls.messages if user.email in m.rcpt_tos]
    assert to_agent
    for notification in to_agent:
        assert re.search(r"http://buzon\.lan:8123/inbox/\d+/", notification.get_body(("plain",)).get_content())


def test_home_page_tells_administrators_only(unset: Any, staff_client: Client, user_client: Client) -> None:
    home = staff_client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="public-address-unset"' in home and "BUZON_BASE_URL" in home
    spanish = staff_client.get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "La dirección pública de Buzón no está configurada" in spanish
    assert 'id="public-address-unset"' not in user_client.get("/").content.decode()
    unset.BASE_URL_SET, unset.BASE_URL = True, "https://buzon.example.com"
    assert 'id="public-address-unset"' not in staff_client.get("/").content.decode()
