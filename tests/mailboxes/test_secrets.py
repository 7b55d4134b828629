"""Passwords at rest: encrypted, rotated by `buzon rotate-keys`, never in a database dump."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from buzon.mailboxes.models import EmailAccount
from buzon.mailboxes.system_account import ensure_system_account

pytestmark = pytest.mark.django_db

SECRETS = ["Zq9-imap-pässwörd-7731", "Zq9-smtp-secret-4410", "Zq9-system-secret-0093"]


def test_rotate_keys_moves_every_secret_to_the_new_key(settings, capsys):
    accounts = []
    for index, secret in enumerate(SECRETS[:2]):
        account = EmailAccount(email_address=f"rot{index}@gmail.com")
        account.set_password(secret)
        account.save()
        accounts.append(account)
    old_keys = list(settings.FERNET_KEYS)
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), *old_keys]
    call_command("rotate-keys")
    assert "re-encrypted 2 secret(s)" in capsys.readouterr().out
    settings.FERNET_KEYS = settings.FERNET_KEYS[:1]  # the old key is gone
    for account, secret in zip(accounts, SECRETS, strict=False):
        account.refresh_from_db()
        assert account.get_password() == secret


def test_rotate_keys_changes_nothing_when_a_secret_is_unreadable(settings):
    good = EmailAccount(email_address="good@gmail.com")
    good.set_password("fine")
    good.save()
    bad = EmailAccount(email_address="bad@gmail.com")
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    bad.set_password("lost")
    bad.save()
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]  # neither account's key is configured now
    before = set(EmailAccount.objects.values_list("password_encrypted", flat=True))
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("rotate-keys")
    assert set(EmailAccount.objects.values_list("password_encrypted", flat=True)) == before


def test_database_dump_shows_no_password():
    for index, secret in enumerate(SECRETS[:2]):
        account = EmailAccount(email_address=f"dump{index}@gmail.com", login=f"login{index}")
        account.set_password(secret)
        account.save()
    ensure_system_account(f"smtps://user:{SECRETS[2]}@smtp.example.org")
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dump.extend(repr(row) for row in cursor.fetchall())
    text = "\n".join(dump)
    assert "dump0@gmail.com" in text  # the dump is real
    for secret in SECRETS:
        assert secret not in text
        assert secret.encode().hex() not in text
