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


def test_raw_mail_goes_to_postgresql_and_back_as_bytes(postgres_url, monkeypatch):
    """Raw mail is bound on the server and read in binary format (buzon.core.pg_binary): not hex
    text twice its size. Every byte value, NULs, and megabytes of random data come back as written,
    whichever way they are read."""
    import contextlib
    import hashlib
    import os

    import psycopg

    from buzon.core import pg_binary
    from buzon.sync.fastinsert import insert_rows
    from buzon.sync.models import RawContent, RawMessage

    with connection.cursor() as cursor:  # the premise: Django's own cursor binds on the client
        assert isinstance(cursor.cursor, psycopg.ClientCursor)
    with pg_binary.binary_cursor() as cursor:
        assert isinstance(cursor.cursor, psycopg.Cursor) and not isinstance(cursor.cursor, psycopg.ClientCursor)
    account = EmailAccount.objects.create(email_address="pedidos@example.test")
    blobs = [bytes(range(256)) * 3, b"\x00", os.urandom(3_000_000), b"Subject: \xf1and\xfa\r\n\r\n\\x41'\"", b""]
    raws = [RawMessage.objects.create(account=account, account_address=account.email_address, folder="INBOX",
                                      uidvalidity=1, uid=i + 1, size=len(blob),
                                      sha256=hashlib.sha256(blob).hexdigest()) for i, blob in enumerate(blobs)]
    used, original = [], pg_binary.binary_cursor

    def watched():  # the cursor the sync's insert writes the bytes with
        with original() as cursor:
            used.append(type(cursor.cursor))
            yield cursor
    monkeypatch.setattr(pg_binary, "binary_cursor", contextlib.contextmanager(watched))
    insert_rows([RawContent(raw_id=raw.pk, data=blob) for raw, blob in zip(raws, blobs, strict=True) if blob])
    assert len(used) == 1 and not issubclass(used[0], psycopg.ClientCursor)
    expected = {raw.pk: blob for raw, blob in zip(raws, blobs, strict=True) if blob}
    streamed = dict(RawContent.stream([raw.pk for raw in raws] + [10**9]))
    assert streamed == expected and all(type(data) is bytes for data in streamed.values())
    for raw, blob in zip(raws, blobs, strict=True):
        assert RawMessage.objects.get(pk=raw.pk).data == blob
    assert list(RawContent.stream([])) == []
    rows = RawContent.stream([raw.pk for raw in raws])  # left after one row (a parse that raised)
    assert next(rows)[1] in blobs
    rows.close()
    assert RawMessage.objects.filter(pk__in=[raw.pk for raw in raws]).count() == len(raws)  # still usable


def test_rows_inserted_together_get_their_own_ids_in_one_statement(postgres_url, django_assert_num_queries):
    """fastinsert.insert_rows_returning on PostgreSQL: one statement of arrays (unnest) for any
    number of rows, each object given the id of its own row, whatever its values hold."""
    import datetime

    from buzon.sync.fastinsert import insert_rows_returning
    from buzon.sync.models import RawMessage

    account = EmailAccount.objects.create(email_address="pedidos@example.test")
    tricky = ["", "NULL", 'co"mi"llas', "{llaves, y comas}", "barra \\ invertida", "ñandú\nlínea", "'; DROP --",
              "x" * 20_000, "\\x00"]
    rows = [RawMessage(account=account, account_address=account.email_address, folder=f"INBOX/{i % 3}",
                       uidvalidity=7, uid=i + 1, size=i, sha256=f"{i:064x}", subject=text,
                       from_header=tricky[-1 - i % len(tricky)], deleted_at=None if i % 2 else datetime.datetime(
                           2026, 12, 7, 3, i % 60, tzinfo=datetime.UTC))
            for i, text in enumerate(tricky * 30)]
    with django_assert_num_queries(1) as captured:
        insert_rows_returning(rows)
    assert "unnest" in captured.captured_queries[0]["sql"]
    for row in rows:
        stored = RawMessage.objects.get(pk=row.pk)
        assert (stored.uid, stored.subject, stored.from_header, stored.deleted_at, stored.folder) == (
            row.uid, row.subject, row.from_header, row.deleted_at, row.folder)
    assert len({row.pk for row in rows}) == len(rows) and not rows[0]._state.adding


def test_the_kept_group_columns_call_no_function_for_a_row_pointing_at_no_customer(postgres_url):
    """buzon.messages.reach on PostgreSQL: a store-less message to an address that is no customer
    leaves its customer group null without calling the trigger's function (each call was planned
    anew); one with a customer in a group gets the group, and a row moved into a store loses it."""
    from buzon.crm.models import AgentGroup, Customer, Store
    from buzon.messages.models import Message

    def calls() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(pg_stat_get_xact_function_calls("
                           "'kept_message_customer_group'::regproc), 0)")
            return cursor.fetchone()[0]

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('is_superuser')")
        if cursor.fetchone()[0] != "on":
            pytest.skip("counting a function's calls (track_functions) needs a superuser's session")
        cursor.execute("SET LOCAL track_functions = 'pl'")  # counted within this test's transaction
    group = AgentGroup.objects.create(name="Equipo")
    customer = Customer.objects.create(name="Cliente", agent_group=group)
    account = EmailAccount.objects.create(email_address="avisos@sin-tienda.test")
    nobody = Message.objects.create(direction="out", account=account, subject="Aviso")
    assert calls() == 0
    known = Message.objects.create(direction="out", account=account, customer=customer, subject="Respuesta")
    assert calls() == 1
    Message.objects.filter(pk=nobody.pk).update(subject="Aviso de nuevo")  # no watched column: no call
    assert calls() == 1
    Message.objects.filter(pk=known.pk).update(store=Store.objects.create(name="Norte"))
    assert calls() == 2
    assert dict(Message.objects.values_list("pk", "customer_group_id")) == {nobody.pk: None, known.pk: None}
    Message.objects.filter(pk=known.pk).update(store=None)
    assert Message.objects.get(pk=known.pk).customer_group_id == group.pk
