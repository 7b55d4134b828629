"""Many sends at once (the API's batch send): each message is accepted or refused on its own, the
accepted ones are committed together, and delivery is asked for once per batch.

Why one transaction with a savepoint per message, rather than a commit per message:
- a refused message (`SendRefused`: an address that can never be sent, an account the sender may
  not use, …) rolls back its own savepoint only, so it never stops the others, as with Postmark's
  batch, which answers each message on its own;
- the accepted ones are all committed, or none is: a request that fails before its commit (a crash,
  a database error: a 5xx or no answer) queued nothing, so sending the whole batch again sends no
  message twice. Only a connection lost after the commit leaves the client unsure, as with a single
  send (which has no idempotency key either);
- one commit (one fsync on SQLite, one round trip on PostgreSQL) instead of one per message.
The price: on SQLite the write lock is held while the batch is stored (most of the 8-9 ms of CPU
a batched message costs on a loaded 2-core machine), which is why the API caps a batch
(buzon.api.outbound_batch.MAX_BATCH).
"""

from __future__ import annotations

import datetime
from collections.abc import Container, Mapping, Sequence
from typing import Any

from django.db import transaction

from buzon.messages.models import Message
from buzon.messages.outbox import SendRefused, enqueue_after_commit, queue_outgoing


def queue_each(sends: Sequence[Mapping[str, Any]], *, user: Any,
               sendable: Container[int] = ()) -> list[Message | SendRefused]:
    """Queue every send (`queue_outgoing`'s keyword arguments, ``user`` apart) as ``user``: for each,
    in order, its Message or the SendRefused that says why it was not queued. Mail that is due now
    shares one delivery task; mail for later, one per send time (as a single send asks). ``sendable``:
    ids of accounts found among `roles.sendable_accounts(user)` (see `outbox.choose_account`)."""
    results: list[Message | SendRefused] = []
    first_of: dict[datetime.datetime | None, int] = {}  # send time -> a message that starts its task
    with transaction.atomic():
        for arguments in sends:
            try:
                with transaction.atomic():  # a savepoint: a refused message leaves nothing behind
                    message = queue_outgoing(user=user, deliver=False, sendable=sendable, **arguments)
            except SendRefused as refused:
                results.append(refused)
                continue
            results.append(message)
            first_of.setdefault(arguments.get("send_at"), message.pk)
        for run_after, message_id in first_of.items():
            transaction.on_commit(lambda m=message_id, r=run_after: enqueue_after_commit(m, r))  # type: ignore[misc]
    return results
