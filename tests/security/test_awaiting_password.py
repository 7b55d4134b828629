"""An account created "awaiting password" gets it from its owner only, probed before it is stored."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from buzon.mailboxes.models import EmailAccount, EmailDomain

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(dovecot) -> tuple[EmailAccount, User]:
    EmailDomain.objects.create(domain_name="example.test", incoming_host="localhost",
                               incoming_port=dovecot.imap_port, incoming_security="starttls")
    address = dovecot.add_user(password="la-buena")
    owner = User.objects.create_user("olga", password="olga-pw-123")
    account = EmailAccount.objects.create(email_address=address, login=address, owner=owner, awaiting_password=True,
                                          incoming_enabled=True, state="awaiting_password",
                                          domain=EmailDomain.objects.get())
    return account, owner


def test_owner_is_asked_at_sign_in_and_a_wrong_password_is_never_stored(waiting):
    account, _owner = waiting
    client = Client()
    signed = client.post("/login/", {"username": "olga", "password": "olga-pw-123"})
    assert signed["Location"] == "/passwords/"
    wrong = client.post("/passwords/", {"account": account.pk, f"a{account.pk}-password": "la-mala"})
    assert wrong.status_code == 200 and "la-mala" not in wrong.content.decode()
    account.refresh_from_db()
    assert account.awaiting_password and not account.has_password  # probed against Dovecot first
    right = client.post("/passwords/", {"account": account.pk, f"a{account.pk}-password": "la-buena"})
    assert right.status_code == 302
    account.refresh_from_db()
    assert not account.awaiting_password and account.get_password() == "la-buena"


def test_nobody_else_sees_the_prompt_or_sets_the_password(waiting):
    account, _owner = waiting
    admin = User.objects.create_user("root", password="root-pw-123", is_staff=True)
    colleague = User.objects.create_user("carlos", password="carlos-pw-123")
    for user in (admin, colleague):
        client = Client()
        client.force_login(user)
        assert client.get("/passwords/").status_code == 302  # nothing waits for them
        client.post("/passwords/", {"account": account.pk, f"a{account.pk}-password": "la-buena"})
    edit = Client()
    edit.force_login(admin)
    page = edit.post(f"/settings/email/accounts/{account.pk}/edit/", {
        "email_address": account.email_address, "login": account.login, "password": "la-buena",
        "incoming_enabled": "on", "sync_option": "all", "initial_sync_count": "250", "smtp_auth": "unknown",
        "tls_verify": "on", "owner": account.owner_id, "awaiting_password": "on"})
    assert page.status_code == 200 and "waits for its user" in page.content.decode()
    api = APIClient()
    api.force_authenticate(admin)
    refused = api.patch(f"/api/v1/email-accounts/{account.pk}/", {"password": "la-buena"}, format="json")
    assert refused.status_code == 403
    assert "password" not in api.get(f"/api/v1/email-accounts/{account.pk}/").json()
    account.refresh_from_db()
    assert account.awaiting_password and not account.has_password
