"""Account rules under concurrent saves on PostgreSQL (many web and API workers at once)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from buzon.crm.models import Store
from buzon.mailboxes import services
from buzon.mailboxes.models import EmailAccount

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def in_threads(function, items):
    def run(item):
        try:
            return function(item)
        except ValidationError as exc:
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(run, items))


def test_concurrent_first_accounts_make_one_default(postgres_url):
    assert connection.vendor == "postgresql"
    accounts = [EmailAccount(email_address=f"first{i}@gmail.com", incoming_enabled=True, awaiting_password=True)
                for i in range(6)]
    results = in_threads(services.save_account, accounts)
    assert not [r for r in results if isinstance(r, Exception)]
    assert EmailAccount.objects.filter(default_incoming=True).count() == 1


def test_concurrent_set_default_leaves_one(postgres_url):
    accounts = [services.save_account(EmailAccount(email_address=f"d{i}@gmail.com", incoming_enabled=True,
                                                   awaiting_password=True)) for i in range(6)]
    in_threads(lambda account: services.set_default(account, "incoming"), accounts)
    assert EmailAccount.objects.filter(default_incoming=True).count() == 1


def test_concurrent_saves_respect_the_store_limit(postgres_url, settings):
    settings.MAX_INCOMING_ACCOUNTS_PER_STORE = 3
    store = Store.objects.create(name="Valencia")
    accounts = [EmailAccount(email_address=f"s{i}@gmail.com", incoming_enabled=True, awaiting_password=True,
                             store=store) for i in range(8)]
    results = in_threads(services.save_account, accounts)
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(refused) == 5 and all("store" in r.error_dict for r in refused)
    assert EmailAccount.objects.filter(store=store, incoming_enabled=True).count() == 3


def test_rotate_keys_and_dump_on_postgresql(postgres_url, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    account = EmailAccount(email_address="pg@gmail.com")
    account.set_password("Zq9-pg-secret")
    account.save()
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), *settings.FERNET_KEYS]
    call_command("rotate-keys")
    settings.FERNET_KEYS = settings.FERNET_KEYS[:1]
    account.refresh_from_db()
    assert account.get_password() == "Zq9-pg-secret"
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mailboxes_emailaccount")
        assert "Zq9-pg-secret" not in repr(cursor.fetchall())
