"""Test an account's servers the way sync and send will use them, without saving anything.

Incoming: connect, secure, log in, then EXAMINE every configured IMAP folder (read-only, so
probing never changes \\Seen flags or recent counts) or STAT the POP3 mailbox. Outgoing: connect,
secure and log in to SMTP. Both directions run at the same time, so a slow server costs one timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings as django_settings
from django.utils.translation import gettext_lazy as _

from buzon.core.crypto import SecretUnreadable
from buzon.mailboxes import imap_names
from buzon.mailboxes.connections import open_imap, open_pop3, open_smtp
from buzon.mailboxes.endpoints import MissingServer, ServerSettings, incoming_settings, smtp_settings
from buzon.mailboxes.errors import ConfigurationError, FolderMissing, MailServerError, ProtocolError, classify
from buzon.mailboxes.models import EmailAccount

T = TypeVar("T")


@dataclass
class DirectionResult:
    """The outcome for one direction: `error` is None when everything worked."""

    direction: str  # "incoming" | "outgoing"
    server: str = ""  # e.g. "imap://imap.example.com:993 (ssl)"; never holds the password
    error: MailServerError | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # e.g. {"folders": {"INBOX": 3}} or {"messages": 3}
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ProbeReport:
    incoming: DirectionResult | None = None
    outgoing: DirectionResult | None = None

    @property
    def results(self) -> list[DirectionResult]:
        return [r for r in (self.incoming, self.outgoing) if r is not None]

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def errors(self) -> list[MailServerError]:
        return [result.error for result in self.results if result.error is not None]


def imap_folders(account: EmailAccount) -> list[str]:
    return [str(name) for name in (account.folders or []) if str(name).strip()] or ["INBOX"]


async def examine_folders(client: Any, s: ServerSettings, folders: list[str]) -> dict[str, int]:
    """EXAMINE each folder; a missing one is FolderMissing naming it. Returns message counts."""
    counts: dict[str, int] = {}
    for name in folders:
        response = await client.examine(imap_names.quoted(name))
        if response.result == "NO":
            raise FolderMissing(host=s.host, port=s.port, protocol="imap", stage="folder", folder=name,
                                detail=_response_text(response))
        if response.result != "OK":
            raise ProtocolError(host=s.host, port=s.port, protocol="imap", stage="folder", folder=name,
                                detail=f"EXAMINE {response.result}: {_response_text(response)}")
        counts[name] = next((int(line.split()[0]) for line in response.lines
                             if isinstance(line, bytes) and line.endswith(b" EXISTS")), 0)
    return counts


def _response_text(response: Any) -> str:
    """The tagged reply's text (the last line); earlier lines are untagged chatter."""
    lines = [line for line in response.lines if isinstance(line, bytes)]
    return lines[-1].decode("utf-8", "replace")[:300] if lines else ""


async def _probe_imap(s: ServerSettings, folders: list[str], timeout: float) -> dict[str, Any]:
    client = await open_imap(s, timeout=timeout, probe=True)
    try:
        counts = await examine_folders(client, s, folders)
    except MailServerError:
        raise
    except Exception as exc:
        raise classify(exc, s, "folder") from exc
    finally:
        try:
            await asyncio.wait_for(client.logout(), timeout)
        except Exception:  # noqa: BLE001,S110 - the answer is known; a failed LOGOUT changes nothing
            pass
    return {"folders": counts}


def _probe_pop3(s: ServerSettings, timeout: float) -> dict[str, Any]:
    client = open_pop3(s, timeout=timeout, probe=True)
    try:
        count, size = client.stat()
    except Exception as exc:
        raise classify(exc, s, "stat") from exc
    finally:
        try:
            client.quit()
        except Exception:  # noqa: BLE001,S110
            pass
    return {"messages": count, "bytes": size}


def _probe_smtp(s: ServerSettings, timeout: float) -> dict[str, Any]:
    client = open_smtp(s, timeout=timeout, probe=True)
    try:
        client.quit()
    except Exception:  # noqa: BLE001,S110 - logged in already, which is what the probe asks
        pass
    return {"auth": s.auth}


def run_async(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code, also when the caller already has an event loop running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


def _timed(result: DirectionResult, work: Callable[[], dict[str, Any]]) -> DirectionResult:
    started = time.monotonic()
    try:
        result.facts = work()
    except MailServerError as exc:
        result.error = exc
    except Exception as exc:  # noqa: BLE001 - every failure becomes a reportable error, never a crash
        result.error = classify(exc, None, "connect")
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _settings(account: EmailAccount, password: str | None, direction: str) -> ServerSettings:
    pick = incoming_settings if direction == "incoming" else smtp_settings
    protocol = "smtp" if direction == "outgoing" else (account.incoming_protocol or "imap")
    try:
        s = pick(account, password)
    except MissingServer:
        raise ConfigurationError(
            _("No server is known for %(address)s: set the server here, create an Email Domain for "
              "“%(domain)s”, or pick its provider.")
            % {"address": account.email_address, "domain": account.email_address.rpartition("@")[2]},
            protocol=protocol, detail="no host on the account, its domain or a provider preset",
        ) from None
    except SecretUnreadable:
        raise ConfigurationError(
            _("The stored password cannot be read with the current encryption keys. Enter the password again."),
            protocol=protocol, detail="stored secret not decryptable",
        ) from None
    if not s.password and not s.oauth_token and (direction == "incoming" or s.auth):
        raise ConfigurationError(_("No password is set for this account."), host=s.host, port=s.port,
                                 protocol=s.protocol, reason="no_password", detail="empty password")
    return s


def _plan(account: EmailAccount, password: str | None, direction: str,
          timeout: float) -> tuple[DirectionResult, Callable[[], dict[str, Any]]]:
    """Work out settings now (it reads the database), and what to run on the network later."""
    result = DirectionResult(direction)
    try:
        s = _settings(account, password, direction)
    except MailServerError as exc:  # a wrong setting, or an OAuth sign-in that was revoked
        result.error = exc
        return result, lambda: {}
    result.server = str(s)
    if direction == "outgoing":
        return result, lambda: _probe_smtp(s, timeout)
    if s.protocol == "pop3":
        return result, lambda: _probe_pop3(s, timeout)
    folders = imap_folders(account)
    return result, lambda: run_async(lambda: _probe_imap(s, folders, timeout))


def probe_account(account: EmailAccount, password: str | None = None, *, incoming: bool = True,
                  outgoing: bool = True, timeout: float | None = None) -> ProbeReport:
    """Probe the directions asked for; `password` tests a new password before it is stored."""
    timeout = float(django_settings.PROBE_TIMEOUT_S if timeout is None else timeout)
    plans = [_plan(account, password, d, timeout) for d, wanted in
             (("incoming", incoming), ("outgoing", outgoing)) if wanted]
    runnable = [(result, work) for result, work in plans if result.error is None]
    if len(runnable) > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(runnable)) as pool:
            list(pool.map(lambda plan: _timed(*plan), runnable))
    else:
        for plan in runnable:
            _timed(*plan)
    report = ProbeReport()
    for result, _work in plans:
        setattr(report, result.direction, result)
    return report
