"""The audit log: who changed which setting of which account, domain or store; secrets never logged."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from buzon.core import api_tokens
from buzon.mailboxes import audit, services
from buzon.mailboxes.models import AccountState, AuditEntry, EmailAccount, EmailDomain

pytestmark = pytest.mark.django_db
ACCOUNTS = "/api/v1/email-accounts/"


@pytest.fixture(autouse=True)
def shop_domain(db) -> EmailDomain:
    return EmailDomain.objects.create(domain_name="shop.test", incoming_host="imap.shop.test",
                                      smtp_host="smtp.shop.test")


def _user(name: str, staff: bool):
    return get_user_model().objects.create_user(name, f"{name}@example.test", "pw-" + name, is_staff=staff)


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_tokens.create(user)[1]}")
    return client


def _web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_api_changes_are_logged_with_the_token_user_and_no_secret(db):
    admin = _user("ana", staff=True)
    api = _api(admin)
    created = api.post(ACCOUNTS, {"email_address": "ventas@shop.test", "display_name": "Ventas",
                                  "password": "Sup3r-Secret"}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    changed = api.patch(f"{ACCOUNTS}{pk}/", {"display_name": "Ventas Madrid", "password": "Otra-Clave-99"},
                        format="json")
    assert changed.status_code == 200, changed.content

    entries = list(AuditEntry.objects.filter(target_type="account", target_id=pk).order_by("id"))
    assert [e.action for e in entries] == ["created", "changed"]
    assert all(e.actor == admin and e.actor_name == "ana" for e in entries)
    change = {c["field"]: c for c in entries[1].changes}
    assert change["display_name"] == {"field": "display_name", "old": "Ventas", "new": "Ventas Madrid"}
    assert change["password_encrypted"] == {"field": "password_encrypted", "secret": True}
    assert set(change) == {"display_name", "password_encrypted"}  # nothing else moved

    stored = json.dumps([e.changes for e in entries])
    account = EmailAccount.objects.get(pk=pk)
    for secret in ("Sup3r-Secret", "Otra-Clave-99", account.password_encrypted):
        assert secret not in stored


def test_ui_store_and_domain_changes_are_logged_with_the_signed_in_user(db):
    admin = _user("berta", staff=True)
    web = _web(admin)
    assert web.post("/settings/stores/new/", {"name": "Madrid", "email": "madrid@shop.test"}).status_code == 302
    entry = AuditEntry.objects.get(target_type="store")
    assert entry.actor_name == "berta" and entry.action == "created" and entry.target_label == "Madrid"

    domain = services.save_domain(EmailDomain(domain_name="branch.test", smtp_host="smtp.branch.test"))
    with audit.acting_as(admin):
        domain.smtp_port = 587
        services.save_domain(domain)
    entries = AuditEntry.objects.filter(target_type="domain", target_id=domain.pk)
    last = entries.first()
    assert last is not None and last.actor_name == "berta"
    assert last.changes == [{"field": "smtp_port", "old": None, "new": 587}]
    first = entries.last()
    assert first is not None and first.actor is None and first.actor_name == ""  # outside a request: "system"


def test_default_moves_and_deletes_are_logged(db):
    admin = _user("carla", staff=True)
    with audit.acting_as(admin):
        one = services.save_account(EmailAccount(email_address="a@shop.test"), probe=False)
        two = services.save_account(EmailAccount(email_address="b@shop.test"), probe=False)
        EmailAccount.objects.filter(pk__in=[one.pk, two.pk]).update(outgoing_enabled=True)
        EmailAccount.objects.filter(pk=one.pk).update(default_outgoing=True)
        services.set_default(two, "outgoing")
        services.delete_account(EmailAccount.objects.get(pk=one.pk))
    moved = AuditEntry.objects.filter(target_id=one.pk, action="changed").get()
    assert moved.changes == [{"field": "default_outgoing", "old": True, "new": False}]
    marked = AuditEntry.objects.filter(target_id=two.pk, action="changed").get()
    assert marked.changes == [{"field": "default_outgoing", "old": False, "new": True}]
    assert AuditEntry.objects.filter(target_id=one.pk, action="deleted", actor=admin).exists()


def test_sync_state_writes_are_not_settings_changes(db):
    account = services.save_account(EmailAccount(email_address="c@shop.test"), probe=False)
    before = AuditEntry.objects.count()
    account.state, account.last_error = AccountState.ERROR, "timeout"
    account.save(update_fields=["state", "last_error"])
    account.last_error = "again"
    account.save()
    assert AuditEntry.objects.count() == before


def test_audit_page_staff_only_and_shows_changed_for_secrets(db):
    admin, agent = _user("dora", staff=True), _user("eva", staff=False)
    with audit.acting_as(admin):
        account = services.save_account(EmailAccount(email_address="d@shop.test"), password="Pw-123456",
                                        probe=False)
        account.display_name = "<script>alert(1)</script>"
        account.set_password("Pw-654321")
        services.save_account(account, probe=False)
    page = _web(admin).get("/settings/audit/")
    html = page.content.decode()
    assert page.status_code == 200 and "d@shop.test" in html and "dora" in html
    assert "<em>changed</em>" in html and "Pw-654321" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    spanish = _web(admin).get("/settings/audit/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Registro de auditoría" in spanish
    assert _web(agent).get("/settings/audit/").status_code in (302, 403)


def test_audit_api_is_read_only_and_staff_only(db):
    admin, agent = _user("fina", staff=True), _user("gema", staff=False)
    with audit.acting_as(admin):
        account = services.save_account(EmailAccount(email_address="f@shop.test"), password="Pw-1", probe=False)
        account.display_name = "F"
        account.set_password("Pw-2")
        services.save_account(account, probe=False)
    api = _api(admin)
    listing = api.get("/api/v1/audit/", {"target_type": "account", "target_id": account.pk})
    assert listing.status_code == 200, listing.content
    results = listing.json()["results"] if isinstance(listing.json(), dict) else listing.json()
    assert [r["action"] for r in results] == ["changed", "created"]
    changes = {c["field"]: c for c in results[0]["changes"]}
    assert changes["display_name"]["new"] == "F" and changes["display_name"]["label"] == "display name"
    assert changes["password_encrypted"]["secret"] is True and "new" not in changes["password_encrypted"]
    assert api.post("/api/v1/audit/", {}, format="json").status_code == 405
    assert api.delete(f"/api/v1/audit/{results[0]['id']}/").status_code == 405
    assert _api(agent).get("/api/v1/audit/").status_code == 403
    assert APIClient().get("/api/v1/audit/").status_code in (401, 403)
