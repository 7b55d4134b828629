"""Many sends at once (the API's batch send): each message is accepted or refused on its own, the
accepted ones are committed together, and delivery is asked for once per batch.

Every check runs before anything is written (`outbox.prepare_many`), so a refused message (an
address that can never be sent, an account the sender may not use, …) is that message's answer
alone and never stops the others, as with Postmark's batch, which answers each message on its own.
The accepted ones are then written together (`outbox.store_many`: one insert per table) and
committed at once, or none is: a request that fails before its commit (a crash, a database error:
a 5xx or no answer) queued nothing, so sending the whole batch again sends no message twice. Only a
connection lost after the commit leaves the client unsure, as with a single send (which has no
idempotency key either). On SQLite the write lock is held only while the rows are written, not
while the sends are checked.
"""

from __future__ import annotations

import datetime
from collections.abc import Container, Mapping, Sequence
from typing import Any

from django.db import transaction

from buzon.messages.models import Message
from buzon.messages.outbox import Outgoing, SendRefused, enqueue_after_commit, prepare_many, store_many


def queue_each(sends: Sequence[Mapping[str, Any]], *, user: Any,
               sendable: Container[int] = ()) -> list[Message | SendRefused]:
    """Queue every send (`queue_outgoing`'s keyword arguments, ``user`` apart) as ``user``: for each,
    in order, its Message or the SendRefused that says why it was not queued. Mail that is due now
    shares one delivery task; mail for later, one per send time (as a single send asks). ``sendable``:
    ids of accounts found among `roles.sendable_accounts(user)` (see `outbox.choose_account`)."""
    prepared = prepare_many([{**arguments, "user": user, "sendable": sendable} for arguments in sends])
    accepted = [send for send in prepared if isinstance(send, Outgoing)]
    first_of: dict[datetime.datetime | None, int] = {}  # send time -> a message that starts its task
    with transaction.atomic():
        store_many(accepted)
        for send in accepted:
            first_of.setdefault(send.request.send_at, send.message.pk)
        for run_after, message_id in first_of.items():
            transaction.on_commit(lambda m=message_id, r=run_after: enqueue_after_commit(m, r))  # type: ignore[misc]
    return [send.message if isinstance(send, Outgoing) else send for send in prepared]
