"""Settings pages through Django's test client: rendering, access, language, write-only secrets."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from buzon.mailboxes.models import EmailAccount, EmailDomain
from tests.support.assets import from_elsewhere, loaded

pytestmark = pytest.mark.django_db

PAGES = [
    "/", "/settings/email/", "/settings/email/accounts/", "/settings/email/accounts/new/",
    "/settings/email/domains/", "/settings/email/domains/new/", "/help/troubleshooting/", "/settings/stores/",
    "/settings/stores/new/",
]


def test_pages_need_sign_in(client):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


@pytest.mark.parametrize("url", PAGES)
def test_staff_sees_every_page_with_navigation(staff_client, url):
    response = staff_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="bz-sidebar"' in html and "Email Account" in html and "Email Domain" in html
    assert loaded(html) and not from_elsewhere(html), from_elsewhere(html)  # no CDN: all from Buzón itself


def test_breadcrumbs_follow_the_seed_path_in_spanish(staff_client):
    html = staff_client.get("/settings/email/accounts/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    crumbs = html[html.index('class="breadcrumb'):html.index("</ol>")]
    positions = [crumbs.index(word) for word in ("Inicio", "Configuración", "Correo / Notificaciones",
                                                 "Cuenta de Correo Electrónico")]
    assert positions == sorted(positions)


def test_language_from_browser_then_cookie(staff_client):
    assert 'lang="es"' in staff_client.get("/", HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9").content.decode()
    assert 'lang="en"' in staff_client.get("/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    response = staff_client.post("/i18n/setlang/", {"language": "es", "next": "/"})
    assert response.status_code == 302
    assert 'lang="es"' in staff_client.get("/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()


def test_non_staff_reads_but_cannot_change(user_client):
    domain = EmailDomain.objects.create(domain_name="shop.test")
    assert user_client.get("/settings/email/domains/").status_code == 200
    assert user_client.get("/settings/email/domains/new/").status_code == 403
    assert user_client.post(f"/settings/email/domains/{domain.pk}/delete/").status_code == 403
    assert user_client.get("/settings/email/accounts/new/").status_code == 403
    assert EmailDomain.objects.filter(pk=domain.pk).exists()


def test_account_form_groups_options_with_help_on_every_one(staff_client):
    html = staff_client.get("/settings/email/accounts/new/").content.decode()
    for section in ("section-general", "section-incoming", "section-outgoing"):
        assert f'id="{section}"' in html
    from buzon.web.forms import AccountForm

    form = AccountForm()
    assert all(field.help_text for name, field in form.fields.items()), [
        name for name, field in form.fields.items() if not field.help_text]
    for name in ("login", "awaiting_password", "ascii_password"):  # the seed's extra options
        assert f'name="{name}"' in html


def test_password_is_never_rendered_back(staff_client):
    account = EmailAccount(email_address="shop@gmail.com")
    account.set_password("Very-Secret-1")
    account.save()
    html = staff_client.get(f"/settings/email/accounts/{account.pk}/edit/").content.decode()
    assert "Very-Secret-1" not in html and account.password_encrypted not in html
    assert "Leave blank to keep the saved password." in html


def test_provider_hint_for_known_addresses(staff_client):
    hint = staff_client.get("/settings/email/accounts/preset-hint/", {"email_address": "ana@gmail.com"})
    assert "imap.gmail.com" in hint.content.decode()
    none = staff_client.get("/settings/email/accounts/preset-hint/", {"email_address": "ana@shop.test"})
    assert none.content.decode().strip() == ""


def test_system_account_is_read_only_and_secret_hidden(staff_client):
    account = EmailAccount(email_address="relay@hosting.test", outgoing_enabled=True, default_outgoing=True,
                           smtp_host="smtp.hosting.test", is_system=True)
    account.set_password("implementer-secret")
    account.save()
    edit = staff_client.get(f"/settings/email/accounts/{account.pk}/edit/")
    assert edit.status_code == 302 and edit["Location"].endswith(f"/settings/email/accounts/{account.pk}/")
    view = staff_client.get(f"/settings/email/accounts/{account.pk}/").content.decode()
    assert 'id="system-account-note"' in view and "smtp.hosting.test" in view
    assert "implementer-secret" not in view and "<form method=\"post\" novalidate" not in view
    listing = staff_client.get("/settings/email/accounts/").content.decode()
    assert f"/settings/email/accounts/{account.pk}/delete/" not in listing


def test_template_accounts_are_offered_to_fill_in(staff_client):
    html = staff_client.get("/settings/email/accounts/").content.decode()
    templates = html[html.index('id="account-templates"'):]
    for role in ("support", "jobs", "notifications", "sales"):  # seed 3.1, created by a data migration
        assert f"{role}@example.invalid" in templates
    support = EmailAccount.objects.get(email_address="support@example.invalid")
    form = staff_client.get(f"/settings/email/accounts/{support.pk}/edit/").content.decode()
    assert 'value="support@example.invalid"' not in form  # the placeholder address is to be replaced


def test_domain_with_accounts_cannot_be_deleted(staff_client):
    domain = EmailDomain.objects.create(domain_name="busy.test")
    EmailAccount.objects.create(email_address="a@busy.test", domain=domain)
    page = staff_client.get(f"/settings/email/domains/{domain.pk}/delete/").content.decode()
    assert 'id="confirm-delete"' not in page
    staff_client.post(f"/settings/email/domains/{domain.pk}/delete/")
    assert EmailDomain.objects.filter(pk=domain.pk).exists()


def test_owner_is_asked_for_a_password_awaited_at_sign_in(db):
    owner = get_user_model().objects.create_user("ana", password="ana-pass")
    EmailAccount.objects.create(email_address="ana@gmail.com", owner=owner, awaiting_password=True,
                                incoming_enabled=True, state="awaiting_password")
    client = Client()
    response = client.post("/login/", {"username": "ana", "password": "ana-pass"})
    assert response.status_code == 302 and response["Location"] == "/passwords/"
    page = client.get("/passwords/").content.decode()
    assert "ana@gmail.com" in page and 'type="password"' in page


def test_stores_pages(staff_client, user_client):
    from buzon.crm.models import Store

    created = staff_client.post("/settings/stores/new/", {"name": "Madrid", "email": "madrid@shop.test"})
    assert created.status_code == 302

    store = Store.objects.get(name="Madrid")
    assert "Madrid" in staff_client.get("/settings/stores/").content.decode()
    listing = user_client.get("/settings/stores/")  # which stores an agent sees is buzon.crm.roles' call
    assert listing.status_code == 200 and f"/settings/stores/{store.pk}/edit/" not in listing.content.decode()
    assert user_client.post(f"/settings/stores/{store.pk}/delete/").status_code == 403
    EmailAccount.objects.create(email_address="shop@gmail.com", store=store)
    staff_client.post(f"/settings/stores/{store.pk}/delete/")
    assert Store.objects.filter(pk=store.pk).exists()
    EmailAccount.objects.filter(store=store).delete()
    staff_client.post(f"/settings/stores/{store.pk}/delete/")
    assert not Store.objects.filter(pk=store.pk).exists()


def test_home_reminds_the_owner_of_awaited_passwords(db):
    owner = get_user_model().objects.create_user("ana", password="ana-pass")
    EmailAccount.objects.create(email_address="ana@gmail.com", owner=owner, awaiting_password=True)
    client = Client()
    client.force_login(owner)
    assert 'id="passwords-needed"' in client.get("/").content.decode()


def test_folders_are_one_per_line_and_keep_commas():
    from buzon.web.forms import FoldersField

    field = FoldersField(required=False)
    assert field.clean("INBOX\r\n  Ventas, 2024 \n\nArchive/Old") == ["INBOX", "Ventas, 2024", "Archive/Old"]
    assert field.prepare_value(["INBOX", "Sent"]) == "INBOX\nSent"
