"""/api/v1/email-accounts/: saves go through the services and probe the real Dovecot / aiosmtpd."""

from __future__ import annotations

import json

import pytest

from buzon.mailboxes.models import EmailAccount

URL = "/api/v1/email-accounts/"
pytestmark = pytest.mark.django_db


def _incoming(address: str, **extra) -> dict:
    return {"email_address": address, "password": "secret", "incoming_enabled": True, **extra}


def _assert_no_password(response, *secrets: str) -> None:
    body = response.content.decode()
    for secret in secrets:
        assert secret not in body
    assert "password_encrypted" not in body
    if response.status_code < 300 and response.content:
        records = response.json().get("results", [response.json()])
        assert all("password" not in record for record in records)


def test_create_with_working_imap_login_saves_and_hides_password(staff_api, dovecot, dovecot_domain):
    address = dovecot.add_user(password="Sésame-42")
    response = staff_api.post(URL, _incoming(address, password="Sésame-42", display_name="Support"), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["email_address"] == address
    assert data["domain"] == dovecot_domain.pk
    assert data["has_password"] is True
    assert data["state"] in {"idle", "syncing"}
    assert data["default_incoming"] is True  # first incoming account becomes the default
    _assert_no_password(response, "Sésame-42")
    account = EmailAccount.objects.get(email_address=address)
    assert account.get_password() == "Sésame-42"
    assert "Sésame-42" not in account.password_encrypted
    for read in (staff_api.get(URL), staff_api.get(f"{URL}{account.pk}/")):
        assert read.status_code == 200
        _assert_no_password(read, "Sésame-42")


def test_wrong_password_is_a_400_on_the_password_field_with_code_and_help(staff_api, dovecot, dovecot_domain):
    address = dovecot.add_user(password="right")
    response = staff_api.post(URL, _incoming(address, password="wrong-one"), format="json")
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["code"] == "auth"
    assert "password" in data and data["password"]
    assert data["help_url"].startswith("http://testserver/help/troubleshooting/")
    assert data["errors"][0]["field"] == "password"
    _assert_no_password(response, "wrong-one")
    assert not EmailAccount.objects.filter(email_address=address).exists()
    assert staff_api.get(data["help_url"].removeprefix("http://testserver")).status_code in {200, 302}


def test_unknown_host_is_reported_on_the_incoming_host(staff_api, dovecot, dovecot_domain):
    address = dovecot.add_user()
    response = staff_api.post(URL, _incoming(address, incoming_host="imap.nowhere.invalid"), format="json")
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["code"] == "dns"
    assert "imap.nowhere.invalid" in data["incoming_host"][0]


def test_error_messages_follow_accept_language(staff_api, dovecot, dovecot_domain):
    address = dovecot.add_user()
    body = _incoming(address, incoming_host="imap.nowhere.invalid")
    english = staff_api.post(URL, body, format="json", HTTP_ACCEPT_LANGUAGE="en")
    spanish = staff_api.post(URL, body, format="json", HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9")
    assert english.status_code == spanish.status_code == 400
    assert english.json()["code"] == spanish.json()["code"] == "dns"
    en_text, es_text = english.json()["incoming_host"][0], spanish.json()["incoming_host"][0]
    assert "imap.nowhere.invalid" in en_text and "imap.nowhere.invalid" in es_text
    assert en_text != es_text
    assert english["Content-Language"] == "en" and spanish["Content-Language"] == "es"
    assert "servidor" in es_text.lower() and "server" in en_text.lower()


def test_address_without_domain_or_provider_is_refused_clearly(staff_api):
    response = staff_api.post(URL, _incoming("someone@unregistered-domain.test"), format="json")
    assert response.status_code == 400
    data = response.json()
    assert "unregistered-domain.test" in json.dumps(data, ensure_ascii=False)
    assert data["errors"]


def test_test_action_probes_without_saving(staff_api, dovecot, dovecot_domain, smtp_starttls):
    address = dovecot.add_user(password="secret")
    created = staff_api.post(URL, _incoming(address), format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    before = EmailAccount.objects.get(pk=pk).updated_at

    ok = staff_api.post(f"{URL}{pk}/test/", {}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["ok"] is True
    assert ok.json()["incoming"]["ok"] is True
    assert ok.json()["outgoing"] is None

    wrong = staff_api.post(f"{URL}{pk}/test/", {"password": "nope", "outgoing_enabled": True,
                                                "smtp_host": "localhost", "smtp_port": smtp_starttls.port,
                                                "smtp_security": "starttls"}, format="json")
    assert wrong.status_code == 200, wrong.content
    report = wrong.json()
    assert report["ok"] is False
    assert report["incoming"]["ok"] is False and report["incoming"]["code"] == "auth"
    assert report["incoming"]["help_url"]
    assert report["outgoing"]["ok"] is False  # nope is not the SMTP password either
    _assert_no_password(wrong, "nope")
    account = EmailAccount.objects.get(pk=pk)
    assert account.updated_at == before and account.outgoing_enabled is False
    assert account.get_password() == "secret"


def test_test_action_for_new_settings(staff_api, smtp_ssl, db):
    from buzon.mailboxes.models import EmailDomain

    EmailDomain.objects.create(domain_name="example.test", smtp_host="localhost", smtp_port=smtp_ssl.port,
                               smtp_security="ssl")
    response = staff_api.post(f"{URL}test/", {"email_address": "sender@example.test", "password": "smtp-secret",
                                              "outgoing_enabled": True}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["outgoing"]["ok"] is True
    assert not EmailAccount.objects.filter(email_address="sender@example.test").exists()


def test_update_keeps_password_when_omitted_and_delete(staff_api, dovecot, dovecot_domain):
    address = dovecot.add_user(password="secret")
    pk = staff_api.post(URL, _incoming(address), format="json").json()["id"]
    patched = staff_api.patch(f"{URL}{pk}/", {"display_name": "Jobs"}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["display_name"] == "Jobs"
    assert EmailAccount.objects.get(pk=pk).get_password() == "secret"
    deleted = staff_api.delete(f"{URL}{pk}/")
    assert deleted.status_code == 204, deleted.content
    assert not EmailAccount.objects.filter(pk=pk).exists()


def test_deleting_the_default_while_others_exist_is_refused(staff_api, dovecot, dovecot_domain):
    first = staff_api.post(URL, _incoming(dovecot.add_user()), format="json").json()
    second = staff_api.post(URL, _incoming(dovecot.add_user()), format="json").json()
    assert first["default_incoming"] is True and second["default_incoming"] is False
    refused = staff_api.delete(f"{URL}{first['id']}/")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["message"]
    assert EmailAccount.objects.filter(pk=first["id"]).exists()


def test_awaiting_password_saves_without_probe(staff_api, dovecot_domain):
    response = staff_api.post(URL, {"email_address": "nobody-yet@example.test", "awaiting_password": True,
                                    "incoming_enabled": True}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["state"] == "awaiting_password"
    assert response.json()["has_password"] is False


def test_read_only_fields_are_ignored_on_write(staff_api, dovecot, dovecot_domain):
    address = dovecot.add_user()
    response = staff_api.post(URL, _incoming(address, state="error", last_error="forged", is_system=True),
                              format="json")
    assert response.status_code == 201, response.content
    assert response.json()["last_error"] == "" and response.json()["is_system"] is False


def test_permissions(user_api, anon_api, staff_api, dovecot_domain):
    assert anon_api.get(URL).status_code == 401
    assert user_api.get(URL).status_code == 200
    assert user_api.post(URL, _incoming("x@example.test"), format="json").status_code == 403
    assert staff_api.get(URL).json()["results"].__len__() >= 0


def test_sync_action_wakes_the_engine(staff_api, user_api, dovecot, dovecot_domain):
    from buzon.sync.models import SyncState

    pk = staff_api.post(URL, _incoming(dovecot.add_user()), format="json").json()["id"]
    assert user_api.post(f"{URL}{pk}/sync/").status_code == 403
    response = staff_api.post(f"{URL}{pk}/sync/")
    assert response.status_code == 202 and response.json() == {"requested": True}
    assert SyncState.objects.get(account_id=pk).sync_requested_at is not None


def test_sync_action_refused_for_an_account_that_does_not_receive(staff_api, db):
    account = EmailAccount.objects.create(email_address="out@gmail.com", outgoing_enabled=True)
    response = staff_api.post(f"{URL}{account.pk}/sync/", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 400
    assert response.json()["code"] == "not_syncable"
    assert "out@gmail.com" in response.json()["non_field_errors"][0]


def test_progress_is_read_only_and_follows_the_engine(staff_api, db):
    from buzon.sync import progress

    account = EmailAccount.objects.create(email_address="big@gmail.com", incoming_enabled=True)
    assert staff_api.get(f"{URL}{account.pk}/").json()["progress"] is None
    progress.add_work(account.pk, 10)
    progress.add_done(account.pk, 4)
    shown = staff_api.get(f"{URL}{account.pk}/").json()["progress"]
    assert shown["done"] == 4 and shown["total"] == 10


def test_system_account_is_read_only_through_the_api(staff_api, db):
    account = EmailAccount(email_address="relay@hosting.test", outgoing_enabled=True, smtp_host="smtp.hosting.test",
                           is_system=True, default_outgoing=True)
    account.set_password("implementer-secret")
    account.save()
    shown = staff_api.get(f"{URL}{account.pk}/")
    assert shown.json()["is_system"] is True
    _assert_no_password(shown, "implementer-secret")
    changed = staff_api.patch(f"{URL}{account.pk}/", {"display_name": "Mine now"}, format="json")
    assert changed.status_code == 400 and changed.json()["code"] == "system_account"
    assert staff_api.delete(f"{URL}{account.pk}/").status_code == 400
    assert EmailAccount.objects.get(pk=account.pk).display_name == ""


def test_store_incoming_limit_is_a_clear_400(staff_api, dovecot, dovecot_domain, settings):
    settings.MAX_INCOMING_ACCOUNTS_PER_STORE = 1
    store = staff_api.post("/api/v1/stores/", {"name": "Madrid"}, format="json").json()["id"]
    assert staff_api.post(URL, _incoming(dovecot.add_user(), store=store), format="json").status_code == 201
    refused = staff_api.post(URL, _incoming(dovecot.add_user(), store=store), format="json")
    assert refused.status_code == 400
    assert "store" in refused.json() and "1" in refused.json()["store"][0]


def test_last_error_is_shown_in_the_readers_language_not_the_syncers(staff_api):
    from django.utils import translation

    from buzon.mailboxes.errors import AuthenticationFailed
    from buzon.sync.status import record_failure

    account = EmailAccount.objects.create(email_address="ventas@example.test", incoming_enabled=True,
                                          incoming_host="imap.example.test")
    with translation.override("en"):  # the sync process runs in English
        record_failure(account.pk, AuthenticationFailed("imap.example.test", 993, "login", protocol="imap"))
    english = staff_api.get(f"{URL}{account.pk}/", HTTP_ACCEPT_LANGUAGE="en").json()
    spanish = staff_api.get(f"{URL}{account.pk}/", HTTP_ACCEPT_LANGUAGE="es").json()
    assert english["state"] == spanish["state"] == "error" and english["last_error_code"] == "auth"
    assert "rejected the login name or password" in english["last_error"]
    assert "imap.example.test (port 993)" in english["last_error"]
    with translation.override("es"):
        expected = AuthenticationFailed("imap.example.test", 993, "login", protocol="imap").message()
    assert spanish["last_error"] == expected and expected != english["last_error"]
    assert "imap.example.test" in spanish["last_error"]
