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


def test_mail_sized_columns_are_compressed_with_lz4(postgres_url):
    """Raw mail, bodies and outgoing bytes are stored compressed with LZ4 where the server has it
    (buzon.core.pg_compression: pglz held a first download to a quarter of the speed)."""
    import hashlib

    from buzon.core.pg_compression import lz4_available
    from buzon.messages.outbox import queue_outgoing
    from buzon.outbound import confirm
    from buzon.outbound.models import OutgoingEmail
    from buzon.sync.models import RawContent, RawMessage

    if not lz4_available(connection):  # a server built without LZ4 keeps pglz: nothing to check
        pytest.skip("this PostgreSQL server has no LZ4")
    # compressible, as mail is (HTML, base64), and above the 2 KB TOAST threshold
    body = "".join(f"<p>Línea {i} del pedido {i * 7} para Tienda Norte</p>\n" for i in range(3000))
    account = EmailAccount.objects.create(email_address="pedidos@example.test", outgoing_enabled=True,
                                          smtp_host="127.0.0.1")
    confirm.mark_confirmed(account)
    raw = RawMessage.objects.create(account=account, account_address=account.email_address, folder="INBOX",
                                    uidvalidity=1, uid=1, size=len(body),
                                    sha256=hashlib.sha256(body.encode()).hexdigest())
    RawContent.objects.create(raw=raw, data=body.encode())
    message = queue_outgoing(to="cliente@example.org", subject="Pedido", text=body, account=account)
    OutgoingEmail.objects.filter(pk=message.pk).update(mime=body.encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(data) FROM sync_rawcontent WHERE raw_id = %s", [raw.pk])
        assert cursor.fetchone() == ("lz4",)
        cursor.execute("SELECT pg_column_compression(text) FROM messages_app_message WHERE id = %s", [message.pk])
        assert cursor.fetchone() == ("lz4",)
        cursor.execute("SELECT pg_column_compression(mime) FROM outbound_outgoingemail WHERE message_id = %s",
                       [message.pk])
        assert cursor.fetchone() == ("lz4",)
    assert bytes(RawContent.objects.get(raw=raw).data) == body.encode()  # and reads back as written
