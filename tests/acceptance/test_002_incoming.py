"""002 — Configuración de descarga de correos entrantes (incoming mail download settings).

Each test is one line of the document: a customer's mail lands in a real Dovecot mailbox, Buzón syncs
it, and the test looks at what the agent (Chromium), the integrator (API) or the mail server shows.
"""

from __future__ import annotations

import pytest
import requests

from buzon.crm.models import Agent
from tests.acceptance.conftest import customer_mail
from tests.acceptance.lines import proves
from tests.support import browser as browser_support

pytestmark = [pytest.mark.browser]


def _api(site, user, path: str) -> requests.Response:
    return requests.get(site.live_url + path, headers={"Authorization": f"Token {site.token(user)}",
                                                       "Accept-Language": "es"}, timeout=30)


def _rows(page, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


@proves("002-1")
def test_mail_is_downloaded_from_several_mailboxes(browser_site):
    """«En el sistema se puede descargar correos entrantes de varios buzones de correo.»
    Mail from several mailboxes (IMAPS and POP3S) reaches one inbox."""
    site = browser_site
    store = site.store("Norte")
    imap = site.account(store, protocol="imap", security="ssl")
    pop = site.account(store, protocol="pop3", security="ssl")
    site.customer_writes(imap, subject="Pedido por IMAP")
    site.customer_writes(pop, subject="Pedido por POP3")
    site.sync(imap, pop)
    agent = site.person("lucia", store=store)
    page = site.page(agent)
    page.goto("/inbox/")
    text = page.locator("#inbox-list").inner_text()
    assert "Pedido por IMAP" in text and "Pedido por POP3" in text


@proves("002-9")
def test_mail_to_the_store_is_linked_to_the_customer_by_address(browser_site):
    """«Los emails enviados al correo electrónico de la tienda en línea serán automáticamente
    "vinculadas" a los clientes del sistema por la dirección de correo electrónico.»"""
    site = browser_site
    store = site.store("Norte")
    account = site.account(store, append_to="customer", create_customer_if_not_found=True)
    site.customer_writes(account, sender="Ana Pérez <Ana@Cliente.example>", subject="Primera")
    site.sync(account)
    site.customer_writes(account, sender="ana@cliente.example", subject="Segunda")
    site.sync(account)
    admin = site.person("admin", admin=True)
    customers = _api(site, admin, "/api/v1/customers/").json()
    rows = customers["results"] if isinstance(customers, dict) else customers
    assert len(rows) == 1  # one card, whatever the case of the address
    messages = _api(site, admin, "/api/v1/messages/").json()
    mails = messages["results"] if isinstance(messages, dict) else messages
    assert {m["subject"] for m in mails} == {"Primera", "Segunda"}
    assert {m["customer"] for m in mails} == {rows[0]["id"]}


@proves("002-10")
def test_each_store_has_its_own_incoming_account_and_sees_only_its_mail(browser_site):
    """«En el caso de que se establezcan correos electrónicos individuales para todas las tiendas, es
    necesario crear una cuenta de descarga de mensajes para cada tienda.»"""
    site = browser_site
    north, south = site.store("Norte"), site.store("Sur")
    north_account = site.account(north, create_customer_if_not_found=True)
    south_account = site.account(south, create_customer_if_not_found=True)
    site.customer_writes(north_account, subject="Para el Norte")
    site.customer_writes(south_account, subject="Para el Sur")
    site.sync(north_account, south_account)
    lucia, pedro = site.person("lucia", store=north), site.person("pedro", store=south)
    page = site.page(lucia)
    page.goto("/inbox/")
    text = page.locator("#inbox-list").inner_text()
    assert "Para el Norte" in text and "Para el Sur" not in text
    page = site.page(pedro)
    page.goto("/inbox/")
    text = page.locator("#inbox-list").inner_text()
    assert "Para el Sur" in text and "Para el Norte" not in text


@proves("002-11")
def test_delete_downloaded_messages_removes_them_from_the_mail_server(site):
    """«Campo "Eliminar mensajes descargados" - elimina del servidor de correo los mensajes descargados
    al sistema.» Checked with another mail client, for IMAP and for POP3."""
    store = site.store("Norte")
    for protocol in ("imap", "pop3"):
        keep = site.account(store, protocol=protocol, create_customer_if_not_found=True)
        delete = site.account(store, protocol=protocol, create_customer_if_not_found=True,
                              delete_after_download=True)
        for account in (keep, delete):
            site.customer_writes(account, subject=f"Por {protocol}")
        site.sync(keep, delete)
        site.sync(keep, delete)  # the pass after the pipeline imported it
        assert [m["Subject"] for m in site.on_server(keep.email_address)] == [f"Por {protocol}"]
        assert site.on_server(delete.email_address) == [], protocol


@proves("002-12")
def test_notify_agent_tells_the_customers_agent_of_the_incoming_letter(browser_site):
    """«Campo "Notificar al agente" - notificación de una carta entrante al agente asignado al cliente.»"""
    site = browser_site
    store = site.store("Norte")
    group = site.group("Ventas Norte", store)
    lucia = site.person("lucia", store=store, group=group, language="es")
    quiet = site.account(store, create_customer_if_not_found=True, agent_group=group, notify_agent=False)
    told = site.account(store, create_customer_if_not_found=True, agent_group=group, notify_agent=True)
    site.customer_writes(quiet, sender="uno@cliente.example", subject="Sin aviso de carta")
    site.customer_writes(told, sender="dos@cliente.example", subject="Con aviso de carta")
    site.sync(quiet, told)
    page = site.page(lucia)
    page.goto("/notifications/")
    items = _rows(page, "#notification-list a")
    letters = [item for item in items if "correo" in item.lower() and "asignado" not in item.lower()]
    assert len(letters) == 1 and "dos@cliente.example" in letters[0], items


@proves("002-13")
def test_mail_from_unknown_senders_is_not_downloaded_when_create_customer_is_off(site):
    """«Si la opción está inactiva (está seleccionada la opción "No") y no se encontraron coincidencias
    por correo electrónico al intentar descargar una carta, dichos emails no se descargarán.»
    Not imported, and not lost either: the mail stays on the server, even with delete on."""
    store = site.store("Norte")
    for protocol in ("imap", "pop3"):
        account = site.account(store, protocol=protocol, create_customer_if_not_found=False,
                               delete_after_download=True, append_to="")
        site.customer_writes(account, sender="desconocido@otro.example", subject=f"Desconocido {protocol}")
        site.sync(account)
        site.sync(account)
        admin = site.person(f"admin-{protocol}", admin=True)
        messages = _api(site, admin, "/api/v1/messages/").json()
        mails = messages["results"] if isinstance(messages, dict) else messages
        assert all(m["subject"] != f"Desconocido {protocol}" or m["status"] != "processed" for m in mails)
        assert [m["Subject"] for m in site.on_server(account.email_address)] == [f"Desconocido {protocol}"]


@proves("002-14")
def test_a_new_senders_card_has_only_the_email_filled_in(browser_site):
    """«Con la función habilitada se verifican todos los emails llegados al buzón, luego se crea una
    tarjeta de cliente, en la que solo el campo "Email" está rellenado.»"""
    site = browser_site
    store = site.store("Norte")
    account = site.account(store, create_customer_if_not_found=True)
    site.customer_writes(account, sender="Ana Pérez <ana@cliente.example>")
    site.sync(account)
    admin = site.person("admin", admin=True)
    customers = _api(site, admin, "/api/v1/customers/").json()
    rows = customers["results"] if isinstance(customers, dict) else customers
    assert len(rows) == 1
    card = rows[0]
    assert card.get("name", "") == ""
    emails = card.get("emails") or card.get("addresses")
    assert [e if isinstance(e, str) else e["address"] for e in emails] == ["ana@cliente.example"]


@proves("002-15")
def test_new_customers_are_spread_evenly_among_free_agents(site):
    """«En el campo "Grupo de agentes para nuevos clientes" ... en primer lugar, los clientes se
    distribuirán de manera uniforme entre aquellos agentes que tengan el estado "Libre".»"""
    store = site.store("Norte")
    group = site.group("Ventas Norte", store)
    free = [site.person(name, store=store, group=group, status=Agent.Status.FREE) for name in ("ana", "bea")]
    site.person("carlos", store=store, group=group, status=Agent.Status.BUSY)
    for user in free:
        Agent.objects.filter(user=user).update(online=True)
    account = site.account(store, create_customer_if_not_found=True, agent_group=group)
    for index in range(4):
        site.customer_writes(account, sender=f"cliente{index}@cliente.example", subject=f"Nuevo {index}")
    site.sync(account)
    admin = site.person("admin", admin=True)
    customers = _api(site, admin, "/api/v1/customers/").json()
    rows = customers["results"] if isinstance(customers, dict) else customers
    agents = sorted(row["agent"] for row in rows)
    ana, bea = (Agent.objects.get(user=user).pk for user in free)
    assert agents == sorted([ana, ana, bea, bea])


@proves("002-16")
def test_without_a_free_agent_the_others_and_the_signed_out_get_customers(browser_site):
    """«Si no hay un solo agente libre, la distribución se realizará para aquellos empleados que tengan
    el estado "En almuerzo", "Ocupado", "Descanso" y para aquellos empleados que no estén autorizados
    en ese momento en el sistema.» A free agent who signed out counts as signed out, not as free."""
    site = browser_site
    store = site.store("Norte")
    group = site.group("Ventas Norte", store)
    away = site.person("ana", store=store, group=group, status=Agent.Status.FREE)
    lunch = site.person("bea", store=store, group=group, status=Agent.Status.LUNCH)
    account = site.account(store, create_customer_if_not_found=True, agent_group=group)
    # Ana is free and signs in, then signs out: she is no longer there to answer.
    page = site.page(away)
    page.goto("/")
    assert Agent.objects.get(user=away).online
    page.goto("/")
    page.locator("#user-menu, [data-bs-toggle=dropdown]").last.click()
    page.locator("form[action$='/logout/'] button, a[href$='/logout/']").first.click()
    page.wait_for_load_state()
    assert not Agent.objects.get(user=away).online
    # Bea is at lunch but signed in: with no free agent signed in, the two share the customers.
    site.page(lunch).goto("/")
    for index in range(2):
        site.customer_writes(account, sender=f"cliente{index}@cliente.example", subject=f"Nuevo {index}")
    site.sync(account)
    admin = site.person("admin", admin=True)
    customers = _api(site, admin, "/api/v1/customers/").json()
    rows = customers["results"] if isinstance(customers, dict) else customers
    assert sorted(row["agent"] for row in rows) == sorted(Agent.objects.get(user=u).pk for u in (away, lunch))


@proves("002-17")
def test_the_agent_receives_two_notifications_in_their_language(browser_site):
    """«Como resultado de la creación, el agente recibe 2 notificaciones del sistema: la primera informa
    que un cliente se ha asignado al agente y la segunda con información sobre la carta entrante.»"""
    site = browser_site
    store = site.store("Norte")
    group = site.group("Ventas Norte", store)
    lucia = site.person("lucia", store=store, group=group, language="es")
    account = site.account(store, create_customer_if_not_found=True, agent_group=group, notify_agent=True)
    site.customer_writes(account, raw=customer_mail(to=account.email_address, sender="ana@cliente.example",
                                                    subject="Quiero devolver un producto"))
    site.sync(account)
    page = site.page(lucia, locale="en-US")  # her own language setting wins over the browser's
    page.goto("/notifications/")
    items = _rows(page, "#notification-list a")
    browser_support.screenshot(page, "acceptance-002-17-notifications")
    assert len(items) == 2, items
    assert any("asignado" in item for item in items), items
    assert any("Quiero devolver un producto" in item or "ana@cliente.example" in item for item in items), items
    assert not any("assigned" in item.lower() for item in items), items
