"""Which agent group reaches a store-less message or conversation: columns on the row, kept by the database.

The role rule (buzon.crm.roles) lets the agents of a group see the store-less mail their group
brought in: the mail of customers the group's rotation was given, and the mail of a store-less
account in the group. Rather than joining to the customer and the account on every list, each
message and conversation carries those two groups (``customer_group``, ``account_group``): null for
a store's mail (a group reaches only store-less rows), so a store's lists never see them, and kept
current by triggers (buzon.core.kept_columns) whatever writes the row or moves a customer into
another group or an account into a store, in the same statement.
"""

from __future__ import annotations

from typing import Any

from buzon.core import kept_columns
from buzon.core.kept_columns import KeptColumn

_CUSTOMERS, _ACCOUNTS = "crm_customer", "mailboxes_emailaccount"

COLUMNS: tuple[KeptColumn, ...] = tuple(
    KeptColumn(name=f"{short}_{via}_group", table=table, column=f"{via}_group_id", key=f"{via}_id",
               source=source, value="agent_group_id", wall="store_id",
               # An account's group reaches its mail only while the account has no store either.
               source_wall="store_id" if source == _ACCOUNTS else "")
    for short, table in (("message", "messages_app_message"), ("conversation", "messages_app_conversation"))
    for via, source in (("customer", _CUSTOMERS), ("account", _ACCOUNTS))
)


def install(schema_editor: Any) -> None:
    kept_columns.install(schema_editor, *COLUMNS)


def refresh(schema_editor: Any) -> None:
    kept_columns.refresh(schema_editor, *COLUMNS)


def uninstall(schema_editor: Any) -> None:
    kept_columns.uninstall(schema_editor, *COLUMNS)


def ensure(connection: Any) -> None:
    kept_columns.ensure(connection, *COLUMNS)
