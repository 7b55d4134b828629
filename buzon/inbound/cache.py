"""Per-process caches of what every message needs and rarely changes: the email accounts.

Saving or deleting an account clears the cache in this process at once; other worker processes see
the change within TTL_S seconds, which only matters for the loop check and account options.
"""

from __future__ import annotations

import time
from typing import Any

from buzon.mailboxes.models import EmailAccount

TTL_S = 30.0
_state: dict[str, Any] = {"at": 0.0, "accounts": {}, "addresses": set()}


def clear(*args: Any, **kwargs: Any) -> None:
    _state["at"] = 0.0


def _load() -> None:
    if time.monotonic() - _state["at"] < TTL_S:
        return
    accounts = {a.pk: a for a in EmailAccount.objects.select_related("agent_group", "store")}
    addresses = {a.email_address.lower() for a in accounts.values()}
    _state.update(at=time.monotonic(), accounts=accounts, addresses=addresses)


def account(account_id: int | None) -> EmailAccount | None:
    if account_id is None:
        return None
    _load()
    found = _state["accounts"].get(account_id)
    if found is None:  # created since the cache was filled
        clear()
        _load()
        found = _state["accounts"].get(account_id)
    return found  # type: ignore[no-any-return]


def own_addresses() -> set[str]:
    _load()
    return _state["addresses"]  # type: ignore[no-any-return]
