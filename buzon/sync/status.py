"""What an account shows about its sync: state, last error in plain words, backoff between tries.

Failures back off exponentially with jitter, so a provider that is down is not hammered and
many accounts do not retry in lockstep. Authentication failures back off much harder: repeated
wrong logins can get the user locked out at the provider.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from buzon.mailboxes.errors import MailServerError
from buzon.mailboxes.models import AccountState, EmailAccount
from buzon.sync.models import SyncState


def backoff_seconds(failures: int, *, auth: bool) -> float:
    base = settings.SYNC_AUTH_BACKOFF_S if auth else settings.SYNC_BACKOFF_BASE_S
    cap = settings.SYNC_AUTH_BACKOFF_MAX_S if auth else settings.SYNC_BACKOFF_MAX_S
    delay = min(cap, base * 2 ** max(0, failures - 1))
    return float(delay * random.uniform(0.5, 1.0))


def record_failure(account_id: int, error: MailServerError) -> datetime:
    """Count one failed attempt (once per attempt, whichever folder saw it first); returns when
    to try again."""
    state, _ = SyncState.objects.get_or_create(account_id=account_id)
    now = timezone.now()
    if state.next_attempt_at is not None and state.next_attempt_at > now:
        retry_at = state.next_attempt_at  # another folder of this account already counted this try
    else:
        failures = state.failures + 1
        retry_at = now + timedelta(seconds=backoff_seconds(failures, auth=error.code == "auth"))
        SyncState.objects.filter(pk=state.pk).update(failures=failures, next_attempt_at=retry_at)
    EmailAccount.objects.filter(pk=account_id).update(
        state=AccountState.ERROR, last_error=error.message(), last_error_code=error.code,
        last_error_state=error.as_state())
    return retry_at


def retry_at(account_id: int) -> datetime | None:
    state = SyncState.objects.filter(account_id=account_id).first()
    return state.next_attempt_at if state else None


def record_contact(account_id: int) -> None:
    EmailAccount.objects.filter(pk=account_id).update(last_contact_at=timezone.now())


def record_synced(account_id: int) -> None:
    now = timezone.now()
    EmailAccount.objects.filter(pk=account_id).update(last_synced_at=now, last_contact_at=now)


def record_state(account_id: int, state: str, *, synced: bool = False) -> None:
    """A successful step: clear the error and the backoff."""
    now = timezone.now()
    fields: dict[str, object] = {"state": state, "last_error": "", "last_error_code": "", "last_error_state": {},
                                 "last_contact_at": now}
    if synced:
        fields["last_synced_at"] = now
    EmailAccount.objects.filter(pk=account_id).update(**fields)
    SyncState.objects.filter(account_id=account_id).exclude(failures=0, next_attempt_at=None).update(
        failures=0, next_attempt_at=None)


def record_syncing(account_id: int) -> None:
    """A download has started. Written without waiting for it, so it may land after a failure
    another folder recorded meanwhile: it never overwrites an error, nor clears one or its backoff
    (only a finished pass does, through record_state)."""
    EmailAccount.objects.filter(pk=account_id).exclude(state=AccountState.ERROR).update(
        state=AccountState.SYNCING, last_contact_at=timezone.now())


def requested_since(account_ids: list[int], since: datetime) -> list[int]:
    return list(SyncState.objects.filter(account_id__in=account_ids, sync_requested_at__gt=since)
                .values_list("account_id", flat=True))
