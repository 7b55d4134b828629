"""/api/v1/email-domains/ and /api/v1/stores/: CRUD, permissions and refused deletes."""

from __future__ import annotations

import pytest

from buzon.crm.models import Store
from buzon.mailboxes.models import EmailAccount, EmailDomain

pytestmark = pytest.mark.django_db
DOMAINS = "/api/v1/email-domains/"
STORES = "/api/v1/stores/"


def test_domain_crud(staff_api):
    created = staff_api.post(DOMAINS, {"domain_name": "shop.test", "incoming_host": "imap.shop.test",
                                       "incoming_security": "ssl", "smtp_host": "smtp.shop.test",
                                       "smtp_port": 587, "smtp_security": "starttls"}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert staff_api.get(DOMAINS).json()["results"][0]["domain_name"] == "shop.test"
    patched = staff_api.patch(f"{DOMAINS}{pk}/", {"attachment_limit_mb": 10}, format="json")
    assert patched.status_code == 200 and patched.json()["attachment_limit_mb"] == 10
    assert staff_api.delete(f"{DOMAINS}{pk}/").status_code == 204
    assert not EmailDomain.objects.exists()


def test_domain_duplicate_and_bad_values_are_400(staff_api):
    assert staff_api.post(DOMAINS, {"domain_name": "a.test"}, format="json").status_code == 201
    duplicate = staff_api.post(DOMAINS, {"domain_name": "a.test"}, format="json")
    assert duplicate.status_code == 400 and "domain_name" in duplicate.json()
    bad = staff_api.post(DOMAINS, {"domain_name": "b.test", "incoming_security": "rot13"}, format="json")
    assert bad.status_code == 400 and "incoming_security" in bad.json()


def test_domain_with_accounts_cannot_be_deleted(staff_api):
    domain = EmailDomain.objects.create(domain_name="busy.test")
    EmailAccount.objects.create(email_address="a@busy.test", domain=domain)
    response = staff_api.delete(f"{DOMAINS}{domain.pk}/", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 400
    assert response.json()["code"] == "protected"
    assert "busy.test" in response.json()["non_field_errors"][0]
    assert EmailDomain.objects.filter(pk=domain.pk).exists()


def test_domain_permissions(user_api, anon_api):
    assert anon_api.get(DOMAINS).status_code == 401
    assert user_api.get(DOMAINS).status_code == 200
    assert user_api.post(DOMAINS, {"domain_name": "x.test"}, format="json").status_code == 403


def test_store_crud_and_protected_delete(staff_api, user_api):
    created = staff_api.post(STORES, {"name": "Madrid", "email": "madrid@shop.test"}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert staff_api.get(f"{STORES}{pk}/").json()["name"] == "Madrid"
    assert user_api.get(STORES).status_code == 200  # which stores an agent sees is buzon.crm.roles' call
    assert user_api.patch(f"{STORES}{pk}/", {"name": "X"}, format="json").status_code == 403
    assert staff_api.patch(f"{STORES}{pk}/", {"name": "Madrid Centro"}, format="json").json()["name"] == "Madrid Centro"
    EmailAccount.objects.create(email_address="shop@gmail.com", store_id=pk)
    refused = staff_api.delete(f"{STORES}{pk}/")
    assert refused.status_code == 400 and refused.json()["code"] == "protected"
    EmailAccount.objects.all().delete()
    assert staff_api.delete(f"{STORES}{pk}/").status_code == 204
    assert not Store.objects.exists()


def test_accounts_filter_by_store_and_domain(staff_api):
    store = Store.objects.create(name="Sevilla")
    domain = EmailDomain.objects.create(domain_name="sevilla.test")
    EmailAccount.objects.create(email_address="a@sevilla.test", store=store, domain=domain)
    EmailAccount.objects.create(email_address="b@gmail.com")
    by_store = staff_api.get("/api/v1/email-accounts/", {"store": store.pk}).json()
    assert [row["email_address"] for row in by_store["results"]] == ["a@sevilla.test"]
    by_domain = staff_api.get("/api/v1/email-accounts/", {"domain": domain.pk}).json()
    assert len(by_domain["results"]) == 1
