"""Details a new user met on a first walk through the UI: every menu entry opens, filters offer only what
can match, the accounts table fits a laptop screen, and settings read in Spanish."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import translation

from buzon.crm.models import Agent, Store
from buzon.crm.roles import SUPERVISOR_GROUP
from buzon.mailboxes.audit import NOT_SETTINGS, TARGETS, _field_label
from buzon.mailboxes.models import EmailAccount
from tests.support import browser as browser_support


def _member(username: str, *, supervisor: bool = False, staff: bool = False) -> Client:
    user = User.objects.create_user(username, password="pw-123-abc", is_staff=staff)
    agent = Agent.objects.create(user=user)
    agent.stores.add(Store.objects.get_or_create(name="Norte")[0])
    if supervisor:
        user.groups.add(Group.objects.get_or_create(name=SUPERVISOR_GROUP)[0])
    client = Client()
    client.force_login(user)
    return client


def _sidebar_links(html: str) -> list[str]:
    sidebar = html[html.index('id="bz-sidebar"'):]
    sidebar = sidebar[:sidebar.index("</nav>")] if "</nav>" in sidebar else sidebar
    return re.findall(r'href="(/[^"]*)"', sidebar)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["agent", "supervisor", "admin"])
def test_every_menu_entry_a_person_sees_opens_for_them(role):
    client = _member(role, supervisor=role == "supervisor", staff=role == "admin")
    links = _sidebar_links(client.get("/").content.decode())
    assert "/inbox/" in links
    refused = {link: client.get(link).status_code for link in links}
    refused = {link: status for link, status in refused.items() if status != 200}
    assert not refused, f"menu entries a {role} sees but may not open: {refused}"


@pytest.mark.django_db
def test_the_inbox_status_filter_offers_only_states_of_received_mail():
    client = _member("lucia")
    html = client.get("/inbox/").content.decode()
    select = html[html.index('id="f-status"'):]
    select = select[:select.index("</select>")]
    offered = set(re.findall(r'value="([a-z_]+)"', select))
    assert offered == {"received", "processed", "unparseable", "failed"}


@pytest.mark.django_db
def test_account_settings_changes_read_in_spanish_in_the_audit_log():
    untranslated = []
    with translation.override("es"):
        for label, target in TARGETS.items():
            for field in apps.get_model(label)._meta.concrete_fields:
                if field.attname in NOT_SETTINGS:
                    continue
                spanish = _field_label(target, field.attname)
                with translation.override("en"):
                    english = _field_label(target, field.attname)
                if spanish == english and english not in {"IMAP", "SMTP", "DKIM"}:
                    untranslated.append(f"{target}.{field.attname}: {english}")
    assert not untranslated


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_accounts_table_fits_a_1280_pixel_screen(chromium, live_server):
    User.objects.create_user("admin", password="pw-123-abc", is_staff=True, is_superuser=True)
    store = Store.objects.create(name="Tienda Norte de la Ciudad")
    for index in range(3):
        EmailAccount.objects.create(
            email_address=f"atencion.al.cliente.{index}@tienda-norte-con-un-dominio-largo.example",
            display_name="Atención al cliente de la Tienda Norte", store=store, incoming_enabled=True,
            outgoing_enabled=True, default_incoming=index == 0, default_outgoing=index == 0)
    page = browser_support.new_page(chromium, live_server.url, locale="es-ES")
    page.set_viewport_size({"width": 1280, "height": 800})
    browser_support.sign_in(page, "admin", "pw-123-abc")
    page.goto("/settings/email/accounts/")
    overflow = page.evaluate("""() => {
        const table = document.querySelector('#account-table');
        const box = table.closest('.table-responsive');
        return {table: table.scrollWidth, box: box.clientWidth, page: document.documentElement.scrollWidth,
                viewport: window.innerWidth};
    }""")
    browser_support.screenshot(page, "accounts-1280")
    assert overflow["table"] <= overflow["box"], overflow  # nothing hidden behind a scroll bar
    assert overflow["page"] <= overflow["viewport"], overflow
    last_button = page.locator("#account-table tbody tr").first.locator("a, button").last
    box = last_button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1280
    header = page.locator("#account-table thead").inner_text()
    assert "Entrante / saliente" in header and "Sentidos" not in header
    page.context.close()
