"""BUZON_SYSTEM_SMTP_URL: the implementer's read-only default outgoing account."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from buzon.mailboxes import services
from buzon.mailboxes.models import EmailAccount
from buzon.mailboxes.probe import probe_account
from buzon.mailboxes.system_account import SystemSMTPURLError, ensure_system_account, parse_system_smtp_url

pytestmark = pytest.mark.django_db


def test_url_forms():
    ssl = parse_system_smtp_url("smtps://mailer%40host.example:p%40ss%3Aw@smtp.host.example?name=Hosted")
    assert (ssl.host, ssl.port, ssl.security, ssl.username, ssl.password) == (
        "smtp.host.example", 465, "ssl", "mailer@host.example", "p@ss:w")
    assert ssl.from_address == "mailer@host.example" and ssl.display_name == "Hosted" and ssl.tls_verify
    starttls = parse_system_smtp_url("smtp+starttls://apikey:secret@relay.example:2525?from=noreply@shop.es&verify=0")
    assert (starttls.port, starttls.security, starttls.from_address, starttls.tls_verify) == (
        2525, "starttls", "noreply@shop.es", False)
    relay = parse_system_smtp_url("smtp://relay.internal")
    assert (relay.port, relay.security, relay.username) == (25, "none", "")
    assert relay.from_address == "noreply@relay.internal"


def test_bad_url_is_explained_without_the_password():
    with pytest.raises(SystemSMTPURLError) as caught:
        parse_system_smtp_url("imap://user:hunter2@host")
    assert "hunter2" not in str(caught.value) and "smtps://" in str(caught.value)


def test_system_account_is_default_read_only_and_works(smtp_ssl):
    other = EmailAccount.objects.create(email_address="own@gmail.com", outgoing_enabled=True, default_outgoing=True)
    account = ensure_system_account(f"smtps://sender%40example.test:smtp-secret@localhost:{smtp_ssl.port}")
    other.refresh_from_db()
    assert account.is_system and account.default_outgoing and not other.default_outgoing
    assert account.outgoing_enabled and not account.incoming_enabled
    assert account.smtp_security == "ssl" and account.get_password() == "smtp-secret"
    assert "smtp-secret" not in account.password_encrypted
    assert probe_account(account, incoming=False).ok
    account.display_name = "changed"
    with pytest.raises(ValidationError) as caught:
        services.save_account(account)
    assert caught.value.code == "system_account"
    with pytest.raises(ValidationError):
        services.delete_account(account)
    # Running it again keeps one account and the admin's choice of default.
    services.set_default(other, "outgoing")
    again = ensure_system_account(f"smtps://sender%40example.test:new-secret@localhost:{smtp_ssl.port}")
    assert again.pk == account.pk and not again.default_outgoing and again.get_password() == "new-secret"
    assert EmailAccount.objects.filter(is_system=True).count() == 1


def test_removing_the_url_retires_it():
    own = EmailAccount.objects.create(email_address="own@gmail.com", outgoing_enabled=True)
    account = ensure_system_account("smtp://relay.internal")
    assert account.default_outgoing and not account.smtp_auth
    assert ensure_system_account("") is None
    account.refresh_from_db()
    own.refresh_from_db()
    assert not account.outgoing_enabled and not account.default_outgoing and own.default_outgoing


def test_address_taken_by_an_ordinary_account(caplog):
    EmailAccount.objects.create(email_address="noreply@relay.internal")
    assert ensure_system_account("smtp://relay.internal") is None
    assert "already uses" in caplog.text


def test_command_and_migrate_apply_the_setting(settings, capsys):
    settings.SYSTEM_SMTP_URL = "smtp+starttls://u:pw@smtp.example.org:587"
    call_command("system-account")
    assert "smtp.example.org:587 (starttls)" in capsys.readouterr().out
    EmailAccount.objects.filter(is_system=True).delete()
    call_command("migrate", verbosity=0)  # the post_migrate handler recreates it
    assert EmailAccount.objects.get(is_system=True).smtp_host == "smtp.example.org"
