"""messages_app 0006: existing undeliverable addresses keep applying where they were learnt.

Each row gets the store of the bounce that taught it; a row whose bounce is gone (or was
store-less) stays store-less, which applies to store-less mail only. The same address may then be
undeliverable in two stores, once in each.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("messages_app", "0004_fill_message_store")]
AFTER = [("messages_app", "0006_undeliverable_store")]


def _migrate(targets):
    MigrationExecutor(connection).migrate(targets)
    return MigrationExecutor(connection)._create_project_state(with_applied_migrations=True).apps


def test_existing_rows_take_the_store_of_their_bounce():
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        apps = _migrate(BEFORE)
        Store = apps.get_model("crm", "Store")
        EmailAccount = apps.get_model("mailboxes", "EmailAccount")
        Message = apps.get_model("messages_app", "Message")
        Undeliverable = apps.get_model("messages_app", "UndeliverableAddress")
        store = Store.objects.create(name="Tienda A")
        account = EmailAccount.objects.create(email_address="ventas@tienda-a.test", store=store)
        bounce_a = Message.objects.create(direction="in", account=account, store=store, status="processed")
        bounce_none = Message.objects.create(direction="in", status="processed")
        Undeliverable.objects.create(address="a@x.test", reason="550", bounce=bounce_a)
        Undeliverable.objects.create(address="b@x.test", reason="550", bounce=bounce_none)
        Undeliverable.objects.create(address="c@x.test", reason="550", bounce=None)
        apps = _migrate(AFTER)
        Undeliverable = apps.get_model("messages_app", "UndeliverableAddress")
        assert dict(Undeliverable.objects.values_list("address", "store_id")) == {
            "a@x.test": store.pk, "b@x.test": None, "c@x.test": None}
        Undeliverable.objects.create(address="a@x.test", reason="550")  # store-less too: allowed
        with pytest.raises(IntegrityError), transaction.atomic():
            Undeliverable.objects.create(address="a@x.test", reason="again", store_id=store.pk)
        with pytest.raises(IntegrityError), transaction.atomic():
            Undeliverable.objects.create(address="c@x.test", reason="again")
    finally:
        MigrationExecutor(connection).migrate(leaves)
