"""The migrations that put a store on every message and customer address, on a database with rows.

From crm 0002 / messages_app 0002 with mail and customers of two stores and of none, forward to the
end: each message takes its account's store and each address its customer's (the fill runs in
batches; here batches of 2 so that several run), and the new uniqueness rules hold: the same
address and the same dedupe key once per store, and once among store-less rows.
"""

from __future__ import annotations

import importlib

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("crm", "0002_customer_contact_customeremail_jobapplicant_ticket_and_more"),
          ("messages_app", "0002_message_agent_message_classification_and_more")]
FILLS = ["buzon.messages.migrations.0004_fill_message_store", "buzon.crm.migrations.0004_fill_customeremail_store"]


def _migrate(targets):
    """Migrate to ``targets`` (whatever depends on a migration undone is undone first) and return the
    models as the database now has them."""
    MigrationExecutor(connection).migrate(targets)
    return MigrationExecutor(connection)._create_project_state(with_applied_migrations=True).apps


def _leaves() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _existing_rows(apps) -> dict[str, object]:
    """What an installation had before: two stores' accounts, a store-less one, mail and customers."""
    Store = apps.get_model("crm", "Store")
    Customer = apps.get_model("crm", "Customer")
    CustomerEmail = apps.get_model("crm", "CustomerEmail")
    EmailAccount = apps.get_model("mailboxes", "EmailAccount")
    Message = apps.get_model("messages_app", "Message")
    made: dict[str, object] = {}
    for key in ("a", "b", None):
        store = Store.objects.create(name=f"Tienda {key}") if key else None
        account = EmailAccount.objects.create(email_address=f"hola@tienda{key or 'x'}.test", store=store)
        for n in range(3):
            Message.objects.create(direction="in", account=account, status="processed", subject=f"{key} {n}",
                                   dedupe_key=f"{key}-{n}")
            customer = Customer.objects.create(store=store)
            CustomerEmail.objects.create(customer=customer, address=f"cliente{n}@{key or 'x'}.test")
        made[f"store_{key}"] = store.pk if store else None
    Message.objects.create(direction="out", account=None, status="sent", subject="sin cuenta", dedupe_key=None)
    return made


def test_the_store_columns_are_filled_for_existing_rows_and_unique_per_store(monkeypatch):
    for name in FILLS:
        monkeypatch.setattr(importlib.import_module(name), "BATCH", 2)
    leaves = _leaves()
    try:
        made = _existing_rows(_migrate(BEFORE))
        apps = _migrate(leaves)
        Message = apps.get_model("messages_app", "Message")
        CustomerEmail = apps.get_model("crm", "CustomerEmail")
        Customer = apps.get_model("crm", "Customer")

        by_subject = dict(Message.objects.values_list("subject", "store_id"))
        assert by_subject == {**{f"a {n}": made["store_a"] for n in range(3)},
                              **{f"b {n}": made["store_b"] for n in range(3)},
                              **{f"None {n}": None for n in range(3)}, "sin cuenta": None}
        assert all(store_id == customer_store for store_id, customer_store in
                   CustomerEmail.objects.values_list("store_id", "customer__store_id"))
        assert CustomerEmail.objects.filter(store_id=made["store_a"]).count() == 3

        # The same address and the same mail in another store: allowed. Twice in one store: refused.
        store_b = Customer.objects.filter(store_id=made["store_b"]).first()
        CustomerEmail.objects.create(customer=store_b, store_id=made["store_b"], address="cliente0@a.test")
        Message.objects.create(direction="in", status="processed", store_id=made["store_b"], dedupe_key="a-0")
        for rows, values in ((CustomerEmail.objects, {"customer": store_b, "store_id": made["store_b"],
                                                      "address": "cliente0@a.test"}),
                             (CustomerEmail.objects, {"customer": Customer.objects.create(),
                                                      "store_id": None, "address": "cliente0@x.test"}),
                             (Message.objects, {"direction": "in", "status": "processed", "store_id": None,
                                                "dedupe_key": "None-0"}),
                             (Message.objects, {"direction": "in", "status": "processed",
                                                "store_id": made["store_a"], "dedupe_key": "a-1"})):
            with pytest.raises(IntegrityError), transaction.atomic():
                rows.create(**values)
    finally:
        _migrate(leaves)
