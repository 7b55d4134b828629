"""A PostgreSQL site upgrading to the statement-level search triggers (search 0006).

Its index was written by the row-level insert and delete trigger of the first installs: after the
migration that trigger is gone, the documents already written are still found, and mail inserted or
deleted afterwards is indexed or taken out by the new triggers, each document the one a whole
re-index writes.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from buzon.messages.models import Message
from buzon.search import schema
from tests.inbound.helpers import mail, store_raw

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BEFORE = [("search", "0005_sender_and_customer_alone")]


def _migrate(targets: list[tuple[str, str]]) -> None:
    MigrationExecutor(connection).migrate(targets)


def _triggers() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'search_%%' AND NOT tgisinternal")
        return {row[0] for row in cursor.fetchall()}


def _as_first_installs_had_it() -> None:
    """The row-level insert and delete trigger (and row-level attachment inserts) of search 0001-0005."""
    source, n = schema.MESSAGES, schema.MESSAGES.name
    table = source.table_name("postgresql")
    with connection.cursor() as cursor:
        for statement in [
            *schema._postgres_drop_triggers(source),
            f"CREATE OR REPLACE FUNCTION search_{n}_index() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP = 'DELETE' THEN DELETE FROM {table} WHERE id = OLD.id; "
            f"ELSE {schema._postgres_fill(source, 'id = NEW.id')} END IF; RETURN NULL; END $$",
            f"CREATE TRIGGER search_{n}_index AFTER INSERT OR DELETE ON {source.table} FOR EACH ROW "
            f"EXECUTE FUNCTION search_{n}_index()",
            schema._postgres_reindex_trigger(source),
            f"CREATE TRIGGER search_{n}_d0 AFTER INSERT OR DELETE ON messages_app_attachment FOR EACH ROW "
            f"EXECUTE FUNCTION search_{n}_d0()",
        ]:
            cursor.execute(statement)


def _reference(source: Any) -> str:
    """The document as ``search_vector`` (the function) defines it, column by column: what the
    triggers' written-out expression must equal."""
    return " || ".join(f"search_vector(s.{name}, '{weight}')" for name, weight in source.columns)


def _documents_differ() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT s.id FROM search_message_source s LEFT JOIN search_message_document d ON d.id = s.id "
                       f"WHERE d.document IS DISTINCT FROM ({_reference(schema.MESSAGES)})")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def _found(word: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM search_message_document WHERE document @@ "
                       "(to_tsquery('english', search_fold(%s)))", [word])
        return {row[0] for row in cursor.fetchall()}


def _receive(subject: str, body: str) -> Message:
    from buzon.inbound import pipeline

    raw = store_raw(mail(subject=subject, body=body))
    assert pipeline.run_pipeline(raw.pk) == "processed"
    return Message.objects.get(raw=raw)


def test_a_site_indexed_row_by_row_keeps_its_index_and_indexes_per_statement_after_the_upgrade(postgres_url):
    assert connection.vendor == "postgresql"
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        _migrate(BEFORE)
        _as_first_installs_had_it()
        assert "search_message_index" in _triggers()
        old = _receive("Presupuesto", "Necesito presupuesto para la terraza acristalada")
        gone = _receive("Baja", "Por favor den de baja la suscripción")
        assert _found("acristalada") == {old.pk} and _found("suscripcion") == {gone.pk}

        _migrate(leaves)
        triggers = _triggers()
        assert "search_message_index" not in triggers and "search_message_d0_inserted" in triggers
        assert {"search_message_inserted", "search_message_deleted"} <= triggers
        new = _receive("Pedido", "El pedido de azulejos llegó roto")
        gone.delete()
        assert _found("acristalada") == {old.pk} and _found("azulejos") == {new.pk}
        assert _found("suscripcion") == set() and _documents_differ() == []
    finally:
        _migrate(leaves)
