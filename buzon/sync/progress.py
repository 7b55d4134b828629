"""First-download progress, per account: how many messages are done out of how many found.

The engine adds to `total` as it discovers work in each folder and to `done` as each batch is
committed; the API and the UI read `account_progress()`.
"""

from __future__ import annotations

from typing import TypedDict

from django.db.models import F
from django.utils import timezone

from buzon.mailboxes.models import EmailAccount
from buzon.sync.models import SyncState


class Progress(TypedDict):
    done: int
    total: int
    eta_s: int | None


def state_for(account_id: int) -> SyncState:
    state, _ = SyncState.objects.get_or_create(account_id=account_id)
    return state


def add_work(account_id: int, count: int) -> None:
    """More messages to bring in; a finished count starts over so the bar means this download."""
    if count <= 0:
        return
    state = state_for(account_id)
    if state.progress_done >= state.progress_total:
        SyncState.objects.filter(pk=state.pk).update(
            progress_done=0, progress_total=count, progress_started_at=timezone.now())
    else:
        SyncState.objects.filter(pk=state.pk).update(progress_total=F("progress_total") + count)


def add_done(account_id: int, count: int) -> None:
    if count > 0:
        SyncState.objects.filter(account_id=account_id).update(progress_done=F("progress_done") + count)


def finish(account_id: int) -> None:
    """A pass ended (even one cut short): what is left is not 'in progress' any more."""
    SyncState.objects.filter(account_id=account_id).update(progress_done=F("progress_total"))


def account_progress(account: EmailAccount | int) -> Progress | None:
    """{"done", "total", "eta_s"} while a download is under way, else None. An account whose
    ``sync_state`` was read with it (select_related, or loaded_states) costs no query."""
    if isinstance(account, EmailAccount) and EmailAccount.sync_state.is_cached(account):
        return progress_of(getattr(account, "sync_state", None))
    account_id = account if isinstance(account, int) else account.pk
    return progress_of(SyncState.objects.filter(account_id=account_id).first())


def loaded_states(accounts: list[EmailAccount]) -> list[EmailAccount]:
    """``accounts`` with their SyncState rows read in one query (None where none), for a list page."""
    missing = [a for a in accounts if a.pk and not EmailAccount.sync_state.is_cached(a)]
    states = {s.account_id: s for s in SyncState.objects.filter(account_id__in=[a.pk for a in missing])}
    for account in missing:
        EmailAccount.sync_state.related.set_cached_value(account, states.get(account.pk))
    return accounts


def progress_of(state: SyncState | None) -> Progress | None:
    if state is None or state.progress_total <= 0 or state.progress_done >= state.progress_total:
        return None
    eta: int | None = None
    if state.progress_started_at and state.progress_done:
        elapsed = (timezone.now() - state.progress_started_at).total_seconds()
        rate = state.progress_done / max(elapsed, 0.001)
        eta = int((state.progress_total - state.progress_done) / rate)
    return {"done": state.progress_done, "total": state.progress_total, "eta_s": eta}
