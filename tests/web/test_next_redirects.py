"""A `next` parameter sends the user back only to a path on this site, never to another one.

The agent-status menu, the second sign-in step (and the redirect that leads to it), and the language
menu each get the hostile values a link could carry; the real CSRF flow is used for the POSTs.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from buzon.crm.models import Agent, Store

pytestmark = pytest.mark.django_db

HOSTILE = [
    "https://evil.example/phish", "http://evil.example", "//evil.example/", "///evil.example", "/\\evil.example",
    "\\\\evil.example", "https:evil.example", "javascript:alert(1)", " //evil.example", "evil.example",
    "HTTPS://evil.example", "/\t/evil.example", "/\r\n/evil.example",  # browsers drop tabs and line breaks
]


def _csrf(client: Client) -> str:
    page = client.get("/inbox/")
    assert page.status_code == 200
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert match is not None
    return match.group(1)


@pytest.fixture
def agent_client(db: Any) -> tuple[Client, Agent]:
    user = User.objects.create_user("ana", password="ana-pw-123")
    agent = Agent.objects.create(user=user)
    agent.stores.add(Store.objects.create(name="Tienda"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client, agent


def _safe(location: str) -> bool:
    return location.startswith("/") and not location.startswith(("//", "/\\")) and "evil.example" not in location


@pytest.mark.parametrize("wanted", HOSTILE)
def test_agent_status_never_redirects_to_another_site(agent_client: tuple[Client, Agent], wanted: str) -> None:
    client, agent = agent_client
    response = client.post("/agent/status/", {"csrfmiddlewaretoken": _csrf(client), "status": "busy", "next": wanted})
    assert response.status_code == 302
    assert response["Location"] == "/inbox/", wanted
    agent.refresh_from_db()
    assert agent.status == "busy"  # the change itself is made


def test_agent_status_goes_back_to_the_page_it_was_on(agent_client: tuple[Client, Agent]) -> None:
    client, _agent = agent_client
    response = client.post("/agent/status/", {"csrfmiddlewaretoken": _csrf(client), "status": "free",
                                              "next": "/tickets/?status=open&page=2"})
    assert response["Location"] == "/tickets/?status=open&page=2"
    assert client.post("/agent/status/", {"csrfmiddlewaretoken": _csrf(client), "status": "free"})["Location"] \
        == "/inbox/"


def _enrolled_and_signed_in() -> Client:
    user = User.objects.create_user("jefa", password="jefa-pw-123", is_staff=True)
    setup = Client()
    setup.force_login(user)
    setup.get("/settings/two-factor/")
    device = TOTPDevice.objects.get(user=user)
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    assert setup.post("/settings/two-factor/", {"code": code}).status_code == 200
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    client = Client()
    assert client.post("/login/", {"username": "jefa", "password": "jefa-pw-123"}).status_code == 302
    return client


def _code() -> str:
    device = TOTPDevice.objects.get(user__username="jefa")
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1, throttling_failure_count=0,
                                                   throttling_failure_timestamp=None)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


@pytest.mark.parametrize("wanted", ["https://evil.example/", "//evil.example/", "/\\evil.example",
                                    "http://testserver.evil.example/"])
def test_second_sign_in_step_never_redirects_to_another_site(wanted: str) -> None:
    client = _enrolled_and_signed_in()
    page = client.get("/login/verify/", {"next": wanted}).content.decode()
    assert '<input type="hidden" name="next" value="/">' in page  # not even carried in the form
    response = client.post("/login/verify/", {"code": _code(), "next": wanted})
    assert response.status_code == 302 and _safe(response["Location"]) and response["Location"] == "/"


def test_second_sign_in_step_returns_to_the_whole_page_asked_for() -> None:
    client = _enrolled_and_signed_in()
    asked = client.get("/tickets/?status=open&page=2")
    assert asked.status_code == 302
    page = client.get(asked["Location"]).content.decode()
    assert 'name="next" value="/tickets/?status=open&amp;page=2"' in page  # the query's & survived
    response = client.post("/login/verify/", {"code": _code(), "next": "/tickets/?status=open&page=2"})
    assert response["Location"] == "/tickets/?status=open&page=2"


@pytest.mark.parametrize("wanted", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_language_menu_never_redirects_to_another_site(agent_client: tuple[Client, Agent], wanted: str) -> None:
    client, _agent = agent_client
    response = client.post("/i18n/setlang/", {"csrfmiddlewaretoken": _csrf(client), "language": "es", "next": wanted})
    assert response.status_code == 302 and _safe(response["Location"]), response["Location"]
