"""What the rest of Buzón may ask of the sync engine (the API's "sync now")."""

from __future__ import annotations

from django.utils import timezone

from buzon.mailboxes.models import EmailAccount
from buzon.sync.models import SyncState


def request_sync(account: EmailAccount | int) -> None:
    """Sync this account now: the engine holding it wakes its folders (within ~1 s) and retries
    at once even if it was waiting out a backoff."""
    account_id = account if isinstance(account, int) else account.pk
    state, _ = SyncState.objects.get_or_create(account_id=account_id)
    SyncState.objects.filter(pk=state.pk).update(sync_requested_at=timezone.now(), next_attempt_at=None)
