"""A new site reaches "an agent answering a customer" without a shell: in Chromium, in Spanish, the
administrator creates a store, an agent group and an agent; the agent gets the invitation by mail
(the SMTP server), is made to choose her own password, sets herself Free from the top bar, and the
next customer's mail (Dovecot, the sync engine's own pass) is hers, in her inbox and notifications.
Deactivated, she cannot sign in, her token stops working, and the next customer goes to someone else.
"""

from __future__ import annotations

import re

import pytest
import requests
from django.contrib.auth.models import User

from buzon.crm.models import Agent, AgentGroup, Customer, Store
from tests.support import browser as browser_support

pytestmark = [pytest.mark.browser]


def _text(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def test_an_administrator_creates_an_agent_who_answers_the_next_customer(browser_site):
    site = browser_site
    admin = site.person("root", admin=True)
    page = site.page(admin)  # es-ES: the pages are in Spanish

    # 1. A store, in the UI.
    page.goto("/settings/stores/new/")
    page.fill("#id_name", "Norte")
    page.click("#save")
    page.wait_for_load_state()
    store = Store.objects.get(name="Norte")

    # 2. An agent group of that store, from the Agents page.
    page.goto("/settings/agents/")
    assert page.locator("h1").inner_text() == "Agentes"
    page.click("#agent-groups")
    page.click("#new-group")
    page.fill("#id_name", "Ventas Norte")
    page.select_option("#id_store", label="Norte")
    page.click("#save")
    page.wait_for_load_state()
    assert "Grupo de agentes Ventas Norte guardado." in page.locator("#bz-toasts").inner_text()
    group = AgentGroup.objects.get(name="Ventas Norte", store=store)

    # The store's mailbox gives its new customers to that group (the account page is tested elsewhere);
    # it is the site's first outgoing account, so invitations and notifications leave through it.
    account = site.account(store, agent_group=group, create_customer_if_not_found=True, notify_agent=True)
    pedro = site.person("pedro", store=store, group=group)  # free, but not signed in

    # 3. The agent, invited.
    page.goto("/settings/agents/")
    page.click("#new-agent")
    assert page.locator("h1").inner_text() == "Nuevo agente"
    page.fill("#id_username", "lucia")
    page.fill("#id_first_name", "Lucía")
    page.fill("#id_email", "lucia@tienda.example")
    page.select_option("#id_language", "es")
    page.get_by_label("Norte", exact=True).check()
    page.get_by_label("Ventas Norte", exact=True).check()
    browser_support.screenshot(page, "people-new-agent-es")
    page.click("#save")
    page.wait_for_load_state()
    assert "La invitación se ha enviado por correo a lucia@tienda.example." in page.locator(
        "#invitation-mailed").inner_text()
    shown = page.locator("#invitation-link").input_value()
    assert "Sirve una vez, durante 7 días; solo se muestra ahora." in page.locator("main").inner_text()
    browser_support.screenshot(page, "people-invited-es")

    invitation = next(m for m in site.received() if "lucia@tienda.example" in str(m["To"]))
    assert invitation["Subject"] == "Su cuenta de Buzón: elija su contraseña"
    body = _text(invitation)
    assert "Su nombre de usuario es lucia." in body and "durante 7 días" in body
    link = re.search(r"https?://\S+/welcome/\S+/", body).group(0)
    assert link == shown

    # 4. Lucía: no password works before she chooses one; the link makes her choose it.
    lucia_page = browser_support.new_page(site.chromium, site.live_url, locale="es-ES")
    site._pages.append(lucia_page)
    lucia_page.goto("/inbox/")
    assert "/login/" in lucia_page.url
    lucia_page.goto(link)
    assert lucia_page.locator("h1").inner_text() == "Elija su contraseña"
    lucia_page.fill("#id_new_password1", "Lucia-clave-2026")
    lucia_page.fill("#id_new_password2", "Lucia-clave-2026")
    lucia_page.click("#set-password")
    lucia_page.wait_for_load_state()
    assert lucia_page.url.rstrip("/") == site.live_url.rstrip("/")
    lucia = User.objects.get(username="lucia")
    assert lucia.check_password("Lucia-clave-2026")
    lucia_page.goto(link)  # used: it works once
    assert "no es válido o ya se ha usado" in lucia_page.locator("#invitation-invalid").inner_text()

    # 5. Free, from the top bar.
    lucia_page.goto("/inbox/")
    with lucia_page.expect_navigation():  # the menu saves as soon as a status is chosen
        lucia_page.select_option("#status-select", "free")
    assert Agent.objects.get(user=lucia).status == "free"
    assert lucia_page.locator("#status-select").input_value() == "free"

    # 6. The next customer is hers.
    site.customer_writes(account, sender="Ana Pérez <ana@cliente.example>", subject="¿Dónde está mi pedido?")
    site.sync(account)
    customer = Customer.objects.get(emails__address="ana@cliente.example")
    assert customer.agent.user == lucia
    lucia_page.goto("/inbox/")
    assert "¿Dónde está mi pedido?" in lucia_page.locator("#inbox-list").inner_text()
    lucia_page.click("#bell")
    lucia_page.wait_for_load_state()
    items = lucia_page.locator("#notification-list a").all_inner_texts()
    assert any("Se le ha asignado el cliente Ana Pérez." in text for text in items), items
    browser_support.screenshot(lucia_page, "people-agent-notified-es")
    token = site.token(lucia)
    api = requests.get(site.live_url + "/api/v1/customers/", headers={"Authorization": f"Token {token}"}, timeout=30)
    assert api.status_code == 200

    # 7. Deactivated from her page.
    page.goto("/settings/agents/")
    page.click("[data-edit='lucia']")
    page.click("#deactivate")
    page.click("#confirm-deactivate")
    page.wait_for_load_state()
    assert "lucia desactivado." in page.locator("#bz-toasts").inner_text()
    lucia_page.goto("/inbox/")
    assert "/login/" in lucia_page.url  # signed out everywhere
    lucia_page.fill("#id_username", "lucia")
    lucia_page.fill("#id_password", "Lucia-clave-2026")
    lucia_page.click("#sign-in")
    lucia_page.wait_for_load_state()
    assert "/login/" in lucia_page.url
    api = requests.get(site.live_url + "/api/v1/customers/", headers={"Authorization": f"Token {token}"}, timeout=30)
    assert api.status_code == 401

    site.customer_writes(account, sender="Bea Ruiz <bea@cliente.example>", subject="Una devolución")
    site.sync(account)
    assert Customer.objects.get(emails__address="bea@cliente.example").agent.user == pedro
