"""Sync progress for the account list's live bar (polled with htmx while an account downloads)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from buzon.mailboxes.models import AccountState, EmailAccount
from buzon.sync.progress import account_progress, loaded_states


def eta_text(seconds: float) -> str:
    if seconds < 60:
        return ngettext("%(n)d second", "%(n)d seconds", int(seconds)) % {"n": int(seconds)}
    if seconds < 3600:
        minutes = round(seconds / 60)
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    hours = seconds / 3600
    return _("%(n).1f hours") % {"n": hours}


def progress_display(account: EmailAccount) -> dict[str, Any] | None:
    """account_progress() plus what the template shows: a percentage and the time left in words."""
    progress = account_progress(account)
    if progress is None:
        return None
    total = max(progress["total"], 1)
    eta = progress.get("eta_s")
    return {**progress, "percent": min(100, round(100 * progress["done"] / total)),
            "eta_text": eta_text(eta) if eta else ""}


def with_progress(accounts: list[EmailAccount]) -> list[EmailAccount]:
    """Attach `sync_progress` to each account for web/accounts/_status.html, and `first_sync_pending`:
    an account just saved, not yet synced, whose state cell must keep asking until its first download
    starts (and shows its progress) instead of reading "Idle" until the page is reloaded. The
    accounts' sync states are read in one query, whatever their number."""
    for account in loaded_states(accounts):
        account.sync_progress = progress_display(account)  # type: ignore[attr-defined]
        account.first_sync_pending = (  # type: ignore[attr-defined]
            account.incoming_enabled and account.state == AccountState.IDLE and account.last_synced_at is None
            and not account.is_template)
    return accounts
