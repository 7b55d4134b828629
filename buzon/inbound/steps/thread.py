"""thread: which conversation a message belongs to.

In order: In-Reply-To/References against mail Buzón sent or received (incl. Message-IDs a provider
gave our sent mail), then a record token in the subject ("[#T-123]", any case or spacing), then a
plus address ("support+ticket-123@"). Tokens and plus addresses count when the account has
automatic linking on (seed 000 §3.2).
"""

from __future__ import annotations

from django.db.models import Model, Q
from django.utils.translation import gettext_noop

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
    candidates = Message.objects.filter(Q(message_id__in=ids) | Q(provider_message_id__in=ids)).order_by("id")
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
            return Message.objects.only("id", "direction", "record_type_id", "record_id").get(pk=by_id[message_id])
    return None


def _auto_link(ctx: Context) -> bool:
    return ctx.account is None or ctx.account.auto_link


def named_records(ctx: Context) -> list[tuple[targets.Target, int, str]]:
    """What the message names by automatic linking, in the order tried: subject tokens, then plus
    addresses, as (target, record id, plus address or "")."""
    if not _auto_link(ctx):
        return []
    named = [(target, record_id, "") for target, record_id in targets.find_record_tokens(ctx.mail.subject)]
    for address in [*ctx.mail.to, *ctx.mail.cc, *ctx.mail.headers.get("delivered-to", [])]:
        plus = targets.parse_plus_address(address)
        if plus is not None:
            named.append((plus[0], plus[1], address))
    return named


def _record(ctx: Context, target: targets.Target, record_id: int) -> Model | None:
    if ctx.known is not None and (target.model, record_id) in ctx.known.records:
        return ctx.known.records[(target.model, record_id)]
    return target.get(record_id)


def run(ctx: Context) -> None:
    parent = _by_headers(ctx) or ctx.parent
    if parent is not None:
        ctx.parent = parent
        if parent.record_type_id and parent.record_id:
            ctx.record = parent.record
        ctx.decide(NAME, "reply", gettext_noop("Answers message %(parent)s."), parent=parent.pk)
        if ctx.record is not None:
            return
    for target, record_id, address in named_records(ctx):
        record = _record(ctx, target, record_id)
        if record is None:
            continue
        ctx.record = record
        if address:
            ctx.decide(NAME, "plus_address", gettext_noop("Sent to %(address)s."), address=address)
        else:
            ctx.decide(NAME, "token", gettext_noop("Subject names %(token)s."), token=target.token(record_id))
        return
    if parent is None:
        ctx.new_conversation = True
        ctx.decide(NAME, "new", gettext_noop("Starts a new conversation."))
