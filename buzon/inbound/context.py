"""What flows through the pipeline: one typed context per message, and the exceptions that stop it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models

from buzon.crm.models import Customer
from buzon.inbound.mail.bounce import Bounce
from buzon.inbound.mail.parse import ParsedMail
from buzon.mailboxes.models import EmailAccount
from buzon.messages.models import Classification, Message
from buzon.sync.models import RawMessage


class StopPipeline(Exception):
    """Base of the typed exceptions a step raises to end processing on purpose (not a failure)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Duplicate(StopPipeline):
    """The same message is already in Buzón (another folder, account or a resync)."""

    def __init__(self, reason: str, existing: int) -> None:
        super().__init__(reason)
        self.existing = existing


class Skip(StopPipeline):
    """Not imported (unknown sender and the account creates no customers): the raw stays, skipped."""


class Unreadable(StopPipeline):
    """The bytes are not a message: it is kept as ``unparseable`` with the reason."""


@dataclass
class Known:
    """What a batch looked up once for all its messages. A step asks here before querying the
    database; a key present with None means "looked up, not there". One-by-one runs have none."""

    #: Outgoing messages by primary key (an X-Buzon-Ref's ``m=``), one instance per row.
    outgoing: dict[int, Message | None] = field(default_factory=dict)
    #: The outgoing message a bounce's returned Message-ID names in a store (as classify picks it).
    outgoing_by_message_id: dict[tuple[int | None, str], Message | None] = field(default_factory=dict)
    #: Records named by subject tokens, plus addresses and parents: (model, pk) -> the one instance.
    records: dict[tuple[type[models.Model], int], models.Model | None] = field(default_factory=dict)
    #: What bounce.detect found for each raw message of the batch (by raw id), so classify reads it.
    bounces: dict[int, Bounce | None] = field(default_factory=dict)
    #: The highest id of each model when a named record was not found: a higher one may be created later.
    highest_id: dict[type[models.Model], int] = field(default_factory=dict)


@dataclass
class Context:
    raw: RawMessage
    account: EmailAccount | None
    message: Message
    parsed: ParsedMail | None = None
    parent: Message | None = None
    bounce: Bounce | None = None  # what classify found, for the bounced step to mark
    bounced: Message | None = None  # the message of ours that bounced
    record: models.Model | None = None
    new_conversation: bool = False
    customer: Customer | None = None
    customer_created: bool = False
    agent_assigned: bool = False
    own_addresses: set[str] = field(default_factory=set)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    decisions_saved: int = 0
    known: Known | None = None

    @property
    def store_id(self) -> int | None:
        """The store of the account the mail arrived at (None: a store-less account). Stores are
        walls: every look-up a message's content can steer (duplicates, parents, tokens, customers,
        our sent mail) stays within it."""
        return self.account.store_id if self.account is not None else None

    @property
    def mail(self) -> ParsedMail:
        assert self.parsed is not None, "the parse step runs first"
        return self.parsed

    @property
    def automated(self) -> bool:
        """Bounces, auto-replies, list mail and our own loops never create customers or get answered."""
        return self.message.classification != Classification.NORMAL

    def decide(self, step: str, decision: str, reason: str = "", **data: Any) -> None:
        """Record a decision. ``reason`` is an untranslated msgid (marked with gettext_noop) whose
        %(name)s placeholders are filled from ``data``; describe() translates it when shown."""
        entry: dict[str, Any] = {"step": step, "decision": decision}
        if reason:
            entry["reason"] = reason
        entry.update({k: v for k, v in data.items() if v is not None})
        self.decisions.append(entry)


def describe(entry: dict[str, Any]) -> str:
    """A recorded decision in plain words, in the active language."""
    from django.utils.translation import gettext

    reason = entry.get("reason") or ""
    if not reason:
        return str(entry.get("decision", ""))
    try:
        return gettext(reason) % entry
    except (KeyError, ValueError, TypeError):
        return gettext(reason)
