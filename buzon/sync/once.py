"""One foreground pass over some accounts (`buzon sync ACCOUNT --once`), with a progress bar."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from django.utils.translation import gettext as _

from buzon.mailboxes.models import EmailAccount
from buzon.sync import dbs, lease
from buzon.sync.account import load_config
from buzon.sync.progress import Progress, account_progress
from buzon.sync.runner import AccountRunner

BAR = 30


class Writer(Protocol):
    def write(self, text: str) -> Any: ...
    def flush(self) -> Any: ...


def find_accounts(names: list[str]) -> list[int]:
    ids = []
    for name in names:
        query = EmailAccount.objects.filter(pk=int(name)) if name.isdigit() else EmailAccount.objects.filter(
            email_address__iexact=name)
        pk = query.values_list("pk", flat=True).first()
        if pk is None:
            raise LookupError(_("No email account “%(name)s”.") % {"name": name})
        ids.append(pk)
    return ids


def _all_enabled() -> list[int]:
    return list(EmailAccount.objects.filter(incoming_enabled=True, awaiting_password=False)
                .values_list("pk", flat=True))


def render_bar(address: str, progress: Progress | None) -> str:
    if not progress:
        return f"\r{address}: …"
    done, total = progress["done"], progress["total"]
    filled = int(BAR * done / max(total, 1))
    eta = f" ETA {progress['eta_s']} s" if progress.get("eta_s") is not None else ""
    return f"\r{address}: [{'#' * filled}{'.' * (BAR - filled)}] {done}/{total}{eta}   "


async def _show(address: str, account_id: int, out: Writer) -> None:
    while True:
        out.write(render_bar(address, await dbs.run(account_progress, account_id)))
        out.flush()
        await asyncio.sleep(0.3)


async def sync_once(ids: list[int] | None, out: Writer) -> None:
    owner = lease.new_owner()
    dbs.STOPPING.clear()
    for account_id in ids if ids is not None else await dbs.run(_all_enabled):
        fences = await dbs.run(lease.claim, owner, [account_id], limit=1)
        if not fences:
            holder = await dbs.run(lease.holder, account_id)
            out.write(_("Account %(id)s is being synced by %(holder)s; skipped.") % {
                "id": account_id, "holder": holder} + "\n")
            continue
        lease.hold(fences[account_id])
        try:
            runner = AccountRunner(await dbs.run(load_config, account_id), once=True)
            bar = asyncio.ensure_future(_show(runner.config.address, account_id, out))
            try:
                await runner.run()
            finally:
                bar.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bar
            out.write("\r" + _("%(address)s: %(count)s new messages stored.") % {
                "address": runner.config.address, "count": runner.stored} + " " * 40 + "\n")
        finally:
            lease.hold(None)
            await dbs.run(lease.release, owner, [account_id])
