"""thread: which conversation a message belongs to.

In order: In-Reply-To/References against mail Buzón sent or received (incl. Message-IDs a provider
gave our sent mail), then a record token in the subject ("[#T-123-k3x9q2ab]", any case or spacing),
then a plus address ("support+ticket-123-k3x9q2ab@"). Tokens and plus addresses count when the
account has automatic linking on (seed 000 §3.2).

Stores are walls. Every look-up here stays within the store of the account the mail arrived at
(store-less accounts: store-less mail and records): a reply finds its parent only among that
store's messages, and joins the parent's record, or a record a token or plus address names, only
when the record belongs to that store. Another store's ticket answers like a missing one: the
mail starts a new conversation of its own store, where its agents see it.

Tokens are unguessable (messages/targets): a token or plus address with the record's check code
is accepted from any sender; a wrong check code is refused; an old one without a check code is
accepted only from the record's own customer (one of their addresses, or the applicant's email),
so that a stranger cannot attach mail to a ticket by counting. A refused name is recorded in plain
words, and the next name (or a new conversation) is tried.
"""

from __future__ import annotations

from django.db.models import Model, Q
from django.utils.translation import gettext_noop

from buzon.crm.records import store_filter
from buzon.inbound.context import Context
from buzon.messages import targets
from buzon.messages.models import Message

NAME = "thread"


def reference_ids(ctx: Context) -> list[str]:
    """The Message-IDs this message answers, nearest first: In-Reply-To, then References from the newest."""
    ids = [ctx.mail.in_reply_to, *reversed(ctx.mail.references)]
    return [i for i in dict.fromkeys(ids) if i][:50]


def _by_headers(ctx: Context) -> Message | None:
    ids = reference_ids(ctx)
    if not ids:
        return None
    candidates = Message.objects.filter(Q(message_id__in=ids) | Q(provider_message_id__in=ids),
                                        **store_filter(ctx.store_id)).order_by("id")
    if ctx.message.pk:
        candidates = candidates.exclude(pk=ctx.message.pk)
    by_id: dict[str, int] = {}
    for pk, message_id, provider_id in candidates.values_list("pk", "message_id", "provider_message_id")[:200]:
        by_id.setdefault(message_id, pk)
        if provider_id:
            by_id.setdefault(provider_id, pk)
    # The nearest reference first: In-Reply-To, then References from the newest.
    for message_id in ids:
        if message_id in by_id:
            return Message.objects.only("id", "direction", "record_type_id", "record_id",
                                        "conversation_id").get(pk=by_id[message_id])
    return None


def _auto_link(ctx: Context) -> bool:
    return ctx.account is None or ctx.account.auto_link


def named_records(ctx: Context) -> list[targets.Named]:
    """What the message names by automatic linking, in the order tried: subject tokens, then plus
    addresses (``Named.address`` set)."""
    if not _auto_link(ctx):
        return []
    named = targets.find_tokens(ctx.mail.subject)
    for address in [*ctx.mail.to, *ctx.mail.cc, *ctx.mail.headers.get("delivered-to", [])]:
        plus = targets.parse_plus(address)
        if plus is not None:
            named.append(plus)
    return named


def _record(ctx: Context, target: targets.Target, record_id: int) -> Model | None:
    """The record, if it exists and belongs to the receiving account's store (else None, as missing)."""
    if ctx.known is not None and (target.model, record_id) in ctx.known.records:
        record = ctx.known.records[(target.model, record_id)]
    else:
        record = target.get(record_id)
    return record if record is not None and in_store(ctx, record) else None


def in_store(ctx: Context, record: Model) -> bool:
    return targets.store_id_of(record) == ctx.store_id


def _shown(named: targets.Named) -> str:
    """How a decision names what the mail named (never the check code)."""
    return named.address or f"[#{named.target.prefix}-{named.record_id}]"


def _refused(ctx: Context, named: targets.Named, record: Model | None) -> bool:
    """Whether the name may not be used, recording why; True when the next name must be tried."""
    if record is None:
        ctx.decide(NAME, "name_ignored", gettext_noop("%(name)s names no record of this account's store: ignored."),
                   name=_shown(named))
        return True
    if named.tag:
        if named.tag_valid:
            return False
        ctx.decide(NAME, "name_refused", gettext_noop("%(name)s carries a wrong check code: ignored."),
                   name=_shown(named))
        return True
    sender = ctx.message.from_address
    if sender and sender in targets.sender_addresses(record):
        return False
    ctx.decide(NAME, "name_refused", gettext_noop(
        "%(name)s has no check code, so only the record's own customer may use it, and %(address)s is not "
        "one of their addresses: ignored."), name=_shown(named), address=sender or "?")
    return True


def run(ctx: Context) -> None:
    parent = _by_headers(ctx) or ctx.parent
    if parent is not None:
        ctx.parent = parent
        if parent.record_type_id and parent.record_id:
            record = parent.record
            ctx.record = record if record is not None and in_store(ctx, record) else None
        ctx.decide(NAME, "reply", gettext_noop("Answers message %(parent)s."), parent=parent.pk)
        if ctx.record is not None:
            return
    for named in named_records(ctx):
        record = _record(ctx, named.target, named.record_id)
        if _refused(ctx, named, record):
            continue
        ctx.record = record
        if named.address:
            ctx.decide(NAME, "plus_address", gettext_noop("Sent to %(address)s."), address=named.address)
        else:
            ctx.decide(NAME, "token", gettext_noop("Subject names %(token)s."),
                       token=named.target.token(named.record_id))
        return
    if parent is None:
        ctx.new_conversation = True
        ctx.decide(NAME, "new", gettext_noop("Starts a new conversation."))
