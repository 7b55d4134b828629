"""The schema and the secret handling on PostgreSQL (the many-worker deployment's database)."""

import pytest
from django.db import connection

from buzon.mailboxes.models import EmailAccount

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_runs_on_postgresql_and_stores_no_clear_password(postgres_url):
    assert connection.vendor == "postgresql"
    account = EmailAccount(email_address="a@example.test")
    account.set_password("hunter2-clear")
    account.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM mailboxes_emailaccount WHERE id = %s", [account.pk])
        row = cursor.fetchone()
    assert not any("hunter2-clear" in str(value) for value in row)
    assert EmailAccount.objects.get(pk=account.pk).get_password() == "hunter2-clear"
