"""Account pages through Django's test client against the real Dovecot and aiosmtpd."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from buzon.mailboxes.models import EmailAccount, EmailDomain

pytestmark = pytest.mark.django_db
NEW = "/settings/email/accounts/new/"


@pytest.fixture
def domain(db, dovecot) -> EmailDomain:
    return EmailDomain.objects.create(domain_name="example.test", incoming_host="localhost",
                                      incoming_port=dovecot.imap_port, incoming_security="starttls")


def _form(address: str, password: str, **extra) -> dict:
    data = {"email_address": address, "password": password, "incoming_enabled": "on", "sync_option": "all",
            "initial_sync_count": "250", "smtp_auth": "unknown", "create_customer_if_not_found": "on",
            "tls_verify": "on"}
    data.update(extra)
    return data


def test_wrong_password_shows_plain_words_and_help_link_then_right_one_saves(staff_client, dovecot, domain):
    address = dovecot.add_user(password="right")
    page = staff_client.post(NEW, _form(address, "wrong"), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    error = page[page.index('data-error-for="password"'):]
    error = error[:error.index("</div>")]
    assert "contraseña" in error.lower()
    assert 'href="/help/troubleshooting/login-rejected/"' in error
    assert "wrong" not in page.replace("wrong-", "")  # the typed password is not echoed back
    assert not EmailAccount.objects.filter(email_address=address).exists()

    saved = staff_client.post(NEW, _form(address, "right"))
    assert saved.status_code == 302 and saved["Location"] == "/settings/email/accounts/"
    account = EmailAccount.objects.get(email_address=address)
    assert account.get_password() == "right" and account.default_incoming


def test_unknown_server_is_an_error_on_the_server_field(staff_client, dovecot, domain):
    address = dovecot.add_user()
    page = staff_client.post(NEW, _form(address, "secret", incoming_host="imap.nowhere.invalid")).content.decode()
    assert 'data-error-for="incoming_host"' in page and "imap.nowhere.invalid" in page


def test_test_connection_partial_reports_each_direction_without_saving(staff_client, dovecot, domain, smtp_starttls):
    address = dovecot.add_user(password="secret")
    data = _form(address, "secret", outgoing_enabled="on", smtp_host="localhost", smtp_port=str(smtp_starttls.port),
                 smtp_security="starttls")
    html = staff_client.post("/settings/email/accounts/test/", data, HTTP_HX_REQUEST="true").content.decode()
    incoming, outgoing = html.split('class="alert ')[1:3]
    assert incoming.startswith("alert-success") and 'data-direction="incoming"' in incoming
    assert outgoing.startswith("alert-danger") and 'data-direction="outgoing"' in outgoing
    assert "/help/troubleshooting/" in outgoing  # the IMAP user is not the SMTP server's user
    assert "<html" not in html  # a fragment for htmx, not a page
    assert not EmailAccount.objects.filter(email_address=address).exists()


def test_defaults_move_and_deleting_the_default_is_refused(staff_client, dovecot, domain):
    first, second = dovecot.add_user(), dovecot.add_user()
    for address in (first, second):
        assert staff_client.post(NEW, _form(address, "secret")).status_code == 302
    one, two = EmailAccount.objects.get(email_address=first), EmailAccount.objects.get(email_address=second)
    assert one.default_incoming and not two.default_incoming
    staff_client.post(f"/settings/email/accounts/{two.pk}/default/incoming/")
    one.refresh_from_db()
    two.refresh_from_db()
    assert two.default_incoming and not one.default_incoming
    refused = staff_client.post(f"/settings/email/accounts/{two.pk}/delete/", follow=True).content.decode()
    assert EmailAccount.objects.filter(pk=two.pk).exists()
    assert "default" in refused.lower()
    staff_client.post(f"/settings/email/accounts/{one.pk}/delete/")
    assert not EmailAccount.objects.filter(pk=one.pk).exists()


def test_sync_now_and_status_partial(staff_client, db):
    from buzon.sync import progress
    from buzon.sync.models import SyncState

    account = EmailAccount.objects.create(email_address="big@gmail.com", incoming_enabled=True, state="syncing")
    progress.add_work(account.pk, 200)
    progress.add_done(account.pk, 50)
    html = staff_client.post(f"/settings/email/accounts/{account.pk}/sync/").content.decode()
    assert SyncState.objects.get(account_id=account.pk).sync_requested_at is not None
    assert 'hx-trigger="every 3s"' in html and "50 of 200 messages" in html and 'style="width: 25%"' in html
    listing = staff_client.get("/settings/email/accounts/").content.decode()
    assert "50 of 200 messages" in listing


def test_awaited_password_is_tested_and_saved_at_sign_in(dovecot, domain):
    address = dovecot.add_user(password="mine")
    owner = get_user_model().objects.create_user("ana", password="ana-pass")
    account = EmailAccount.objects.create(email_address=address, domain=domain, owner=owner, awaiting_password=True,
                                          incoming_enabled=True, state="awaiting_password")
    client = Client()
    client.force_login(owner)
    field = f"a{account.pk}-password"
    wrong = client.post("/passwords/", {"account": account.pk, field: "nope"}).content.decode()
    assert f'data-error-for="{field}"' in wrong and "/help/troubleshooting/" in wrong
    account.refresh_from_db()
    assert account.awaiting_password and not account.has_password
    done = client.post("/passwords/", {"account": account.pk, field: "mine"})
    assert done.status_code == 302
    account.refresh_from_db()
    assert not account.awaiting_password and account.get_password() == "mine" and account.state == "idle"


def test_filling_in_a_predefined_account_makes_it_a_real_one(staff_client, dovecot, domain):
    support = EmailAccount.objects.get(template_role="support", email_address__endswith="@example.invalid")
    address = dovecot.add_user(password="secret")
    response = staff_client.post(f"/settings/email/accounts/{support.pk}/edit/",
                                 _form(address, "secret", display_name="Support", append_to="ticket",
                                       folders="INBOX"))
    assert response.status_code == 302, response.content.decode()[-2000:]
    support.refresh_from_db()
    assert support.email_address == address and support.incoming_enabled and support.append_to == "ticket"
    listing = staff_client.get("/settings/email/accounts/").content.decode()
    templates = listing[listing.index('id="account-templates"'):listing.index('id="bz-toasts"')]
    assert "Support" not in templates and address not in templates
    assert "jobs@example.invalid" in templates
    assert not EmailAccount.objects.filter(email_address="support@example.invalid").exists()
