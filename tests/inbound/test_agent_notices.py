"""Seed 002: "as a result of the creation, the agent receives 2 system notifications: a customer was
assigned, and the incoming mail" — the first always, the second as "Notify agent" says; each in the
agent's own language, in the bell, the API and the mail at the SMTP sink."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from buzon.core.models import UserPreferences
from buzon.crm.models import Agent, AgentGroup, Notification
from buzon.inbound import pipeline
from buzon.mailboxes.models import EmailAccount
from buzon.messages.models import Message
from buzon.outbound import confirm
from buzon.outbound.sender import deliver_due
from buzon.outbound.smtp import SMTPPool
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db
PASSWORD = "pw-agent-123"


@pytest.fixture
def outgoing(smtp_starttls: Any) -> Iterator[Any]:
    """The default outgoing account (notifications leave through it), at the aiosmtpd sink."""
    account = EmailAccount(email_address="sender@example.test", outgoing_enabled=True, default_outgoing=True,
                           smtp_host="localhost", smtp_port=smtp_starttls.port, smtp_security="starttls",
                           smtp_auth=True, display_name="Avisos")
    account.set_password("smtp-secret")
    account.save()
    confirm.mark_confirmed(account)
    yield smtp_starttls


def _delivered(server: Any, to: str) -> list[EmailMessage]:
    pool = SMTPPool(per_account=2, timeout=10)
    try:
        deliver_due(pool=pool)
    finally:
        pool.shutdown()
    return [message_from_bytes(m.data, policy=default) for m in server.messages if to in m.rcpt_tos]


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _agent(name: str, group_name: str) -> tuple[User, AgentGroup]:
    user = User.objects.create_user(name, email=f"{name}@shop.test", password=PASSWORD)
    agent = Agent.objects.create(user=user, status=Agent.Status.FREE)
    group = AgentGroup.objects.create(name=group_name)
    agent.groups.add(group)
    return user, group


def _sign_in(name: str) -> Client:
    browser = Client()
    assert browser.post("/login/", {"username": name, "password": PASSWORD}).status_code == 302
    return browser


@pytest.mark.parametrize("notify_agent", [False, True], ids=["notify-agent-off", "notify-agent-on"])
def test_the_assignment_notice_always_goes_and_notify_agent_governs_the_mail_notice(outgoing, notify_agent):
    user, group = _agent("lucia", "Soporte")
    account = support_account(agent_group=group, notify_agent=notify_agent)
    pipeline.run_pipeline(store_raw(mail(subject="Pedido 1234"), account).pk)
    expected = ["customer_assigned", "new_email"] if notify_agent else ["customer_assigned"]
    assert sorted(Notification.objects.filter(user=user).values_list("kind", flat=True)) == expected
    mails = _delivered(outgoing, user.email)
    subjects = sorted(m["Subject"] for m in mails)
    assert subjects[0] == "Customer Ana Pérez has been assigned to you."
    assert subjects[1:] == (["New email from Ana Pérez: Pedido 1234"] if notify_agent else [])
    # A second mail of the same customer: nothing new is assigned, so only the mail notice (when on).
    pipeline.run_pipeline(store_raw(mail(subject="Otra cosa"), account).pk)
    assert Notification.objects.filter(user=user, kind="customer_assigned").count() == 1
    assert Notification.objects.filter(user=user, kind="new_email").count() == (2 if notify_agent else 0)


def test_each_agent_reads_both_notifications_in_their_own_language(outgoing):
    lucia, soporte = _agent("lucia", "Soporte")
    john, sales = _agent("john", "Sales")
    # Lucía picks Spanish in the top bar's language menu; John keeps the site's language (English).
    browser = _sign_in("lucia")
    assert browser.post("/language/", {"language": "es", "next": "/inbox/"}).status_code == 302
    assert browser.post("/logout/").status_code == 302
    spanish = support_account(agent_group=soporte, notify_agent=True)
    english = support_account(email_address="sales@shop.test", agent_group=sales, notify_agent=True)
    pipeline.run_pipeline(store_raw(mail(subject="Pedido roto"), spanish).pk)
    pipeline.run_pipeline(store_raw(mail(sender="Bob <bob@customer.test>", to="sales@shop.test",
                                         subject="Broken order"), english).pk)
    message = Message.objects.get(subject="Pedido roto")

    # Signing in (a new browser, no language cookie) switches the pages to her language.
    lucia_browser = _sign_in("lucia")
    assert lucia_browser.cookies["django_language"].value == "es"
    page = lucia_browser.get("/notifications/").content.decode()
    assert "Se le ha asignado el cliente Ana Pérez." in page
    assert "Nuevo correo de Ana Pérez: Pedido roto" in page
    assert "has been assigned" not in page and "New email" not in page
    assert 'id="bell-count">2<' in page and "2 notificaciones sin leer" in page
    assert f"/inbox/{message.pk}/" in page
    api = lucia_browser.get("/api/v1/notifications/", HTTP_ACCEPT_LANGUAGE="en").json()
    assert sorted(n["text"] for n in api["results"]) == [
        "Nuevo correo de Ana Pérez: Pedido roto", "Se le ha asignado el cliente Ana Pérez."]

    john_page = _sign_in("john").get("/notifications/").content.decode()
    assert "Customer Bob has been assigned to you." in john_page
    assert "New email from Bob: Broken order" in john_page

    # The same rows read in the reader's language at read time: Lucía switching to English sees English.
    lucia_browser.post("/language/", {"language": "en", "next": "/"})
    assert "Customer Ana Pérez has been assigned to you." in lucia_browser.get("/notifications/").content.decode()

    to_lucia = {m["Subject"]: _body(m) for m in _delivered(outgoing, lucia.email)}
    assert set(to_lucia) == {"Se le ha asignado el cliente Ana Pérez.", "Nuevo correo de Ana Pérez: Pedido roto"}
    assert "Quiero cambiar mi pedido." in to_lucia["Nuevo correo de Ana Pérez: Pedido roto"]
    assert f"/inbox/{message.pk}/" in to_lucia["Se le ha asignado el cliente Ana Pérez."]
    to_john = {m["Subject"] for m in _delivered(outgoing, john.email)}
    assert to_john == {"Customer Bob has been assigned to you.", "New email from Bob: Broken order"}


def test_a_language_the_site_does_not_offer_is_not_saved():
    user, _group = _agent("lucia", "Soporte")
    browser = _sign_in("lucia")
    for bad in ("xx", "es<script>", ""):
        browser.post("/language/", {"language": bad, "next": "/"})
    assert set(UserPreferences.objects.filter(user=user).values_list("language", flat=True)) <= {"", "en"}
    before = list(UserPreferences.objects.values_list("user_id", "language"))
    assert Client().post("/language/", {"language": "es", "next": "/"}).status_code == 302  # anonymous: cookie only
    assert list(UserPreferences.objects.values_list("user_id", "language")) == before


def test_notifications_written_before_read_in_the_readers_language_too():
    from django.apps import apps

    migration = importlib.import_module("buzon.inbound.migrations.0004_notification_texts_as_data")
    user, _group = _agent("lucia", "Soporte")
    old = [("customer_assigned", "Customer Ana Pérez has been assigned to you."),
           ("new_email", "New email from Ana: Re: Pedido: roto"),
           ("unreplied", "No reply yet to the email from ana@customer.test received at support@shop.test: Hola"),
           ("new_email", "Something else entirely")]
    for index, (kind, text) in enumerate(old):
        Notification.objects.create(user=user, kind=kind, key=f"old:{index}", text=text)
    migration.forwards(apps, None)
    UserPreferences.objects.create(user=user, language="es")
    browser = Client()
    browser.force_login(user)
    browser.cookies["django_language"] = "es"
    page = browser.get("/notifications/").content.decode()
    assert "Se le ha asignado el cliente Ana Pérez." in page
    assert "Nuevo correo de Ana: Re: Pedido: roto" in page
    assert "Todavía sin respuesta al correo de ana@customer.test recibido en support@shop.test: Hola" in page
    assert "Something else entirely" in page  # not one of ours: as written
