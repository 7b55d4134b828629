"""Running the pipeline again: one message, an account, or the skipped ones (idempotent)."""

from __future__ import annotations

from collections import Counter
from email.utils import getaddresses

from django.db.models import QuerySet

from buzon.inbound.pipeline import run_pipeline
from buzon.messages.models import Message
from buzon.sync.enqueue import enqueue_processing
from buzon.sync.models import KEY_ONLY, RawMessage


def raw_ids(*, message_id: int | None = None, account_id: int | None = None, skipped: bool = False,
            failed: bool = False) -> list[int]:
    # Never a row holding only a server key (a duplicate, mail not downloaded): there is nothing to run.
    rows: QuerySet[RawMessage] = RawMessage.objects.filter(deleted_at__isnull=True).exclude(status__in=KEY_ONLY)
    if message_id is not None:
        raw_id = Message.objects.filter(pk=message_id).values_list("raw_id", flat=True).first()
        return [raw_id] if raw_id else []
    if account_id is not None:
        rows = rows.filter(account_id=account_id)
    statuses = [s for s, wanted in ((RawMessage.Status.SKIPPED, skipped), (RawMessage.Status.FAILED, failed)) if wanted]
    if statuses:
        rows = rows.filter(status__in=statuses)
    return list(rows.order_by("received_at", "id").values_list("id", flat=True))


def reprocess(ids: list[int]) -> Counter[str]:
    if len(ids) > 1:
        from buzon.inbound.batch import run_batch  # batch imports this module

        return run_batch(ids)
    return Counter(run_pipeline(raw_id) for raw_id in ids)


def skipped_count(account_id: int) -> int:
    """How many messages of the account were not imported (unknown senders): the account log shows it."""
    return RawMessage.objects.filter(account_id=account_id, status=RawMessage.Status.SKIPPED).count()


def import_skipped_from(address: str, store_id: int | None) -> None:
    """A sender became a customer of ``store_id``: import what that store's accounts skipped from
    them (after the commit, as a task). Customers are per store, so other stores' skipped mail stays."""
    address = address.strip().lower()
    if not address:
        return
    accounts = {"account__store__isnull": True} if store_id is None else {"account__store_id": store_id}
    candidates = (RawMessage.objects.filter(status=RawMessage.Status.SKIPPED, from_header__icontains=address,
                                            **accounts).order_by("id").values_list("id", "from_header"))
    # the header contains the address: keep only those whose sender IS it (not "notbob@" for "bob@")
    ids = [raw_id for raw_id, header in candidates.iterator()
           if any(found.strip().lower() == address for _, found in getaddresses([header]))]
    if not ids:
        return
    enqueue_processing(ids)  # with the database backend, in this transaction; else after the commit
