"""``notify_unreplied_after_minutes``: a conversation whose customer mail is still unanswered after that
many minutes alerts the account's ``notify_unreplied_to`` addresses (seed 000 §3.3), once.

"Answered" means a *person* replied in the conversation after that mail (buzon.messages.replies): an
auto-reply or a notification is not an answer. The alert is one per conversation (a ticket, a
customer, whatever record the account appends to; mail no record took is its own conversation), with
a link to it: three unanswered mails of one customer make one alert, and a mail arriving while that
alert is still unanswered makes none. After a person replies, a new unanswered mail alerts again.

Every received message is *settled* once its time is up (``unreplied_notified_at``): alerted, found
answered, or covered by its conversation's alert. So each run only looks at mail whose time has just
come, and the claim on those rows is what makes two runners send one alert.
Run by ``buzon notify_unreplied`` (the workers' scheduler runs it each minute).

The alert names the store's mail, so it belongs to that store and leaves through its own outgoing
account when it has one (buzon.messages.outbox, ``about_store``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation

from buzon.core import public_url
from buzon.core.language import language_of, languages_of
from buzon.crm.models import Notification
from buzon.inbound import notices, outbox_glue
from buzon.mailboxes.models import EmailAccount
from buzon.messages import replies
from buzon.messages.models import Classification, Direction, Message, MessageStatus

BATCH = 500


def _conversation(message: Message) -> tuple[object, ...]:
    if message.record_type_id and message.record_id:
        return ("record", message.record_type_id, message.record_id)
    return ("message", message.pk)


def _answered(message: Message) -> bool:
    return replies.person_replies().filter(
        replies.in_conversation(message), created_at__gte=message.created_at).exists()


def _alerted_already(message: Message, claimed: list[int]) -> bool:
    """Whether this conversation had its alert since a person last replied: a mail of it that came
    after that reply (or at all, without one) was settled before, which only an alert does."""
    if not (message.record_type_id and message.record_id):
        return False
    last_reply = (replies.person_replies().filter(replies.in_conversation(message))
                  .order_by("-created_at").values_list("created_at", flat=True).first())
    earlier = Message.objects.filter(direction=Direction.INCOMING, record_type_id=message.record_type_id,
                                     record_id=message.record_id, unreplied_notified_at__isnull=False)
    if last_reply is not None:
        earlier = earlier.filter(created_at__gt=last_reply)
    return earlier.exclude(pk__in=claimed).exists()


def _recipients(account: EmailAccount) -> list[str]:
    return [a.strip() for a in account.notify_unreplied_to.replace(";", ",").split(",") if a.strip()]


def notify_unreplied(now: dt.datetime | None = None) -> int:
    """Alert about every conversation whose mail is overdue and unanswered; returns how many."""
    now = now or timezone.now()
    done = 0
    accounts = EmailAccount.objects.filter(notify_unreplied_after_minutes__isnull=False).exclude(notify_unreplied_to="")
    for account in accounts:
        cutoff = now - dt.timedelta(minutes=account.notify_unreplied_after_minutes or 0)
        due = Message.objects.filter(
            account=account, direction=Direction.INCOMING, status=MessageStatus.PROCESSED,
            classification=Classification.NORMAL, unreplied_notified_at__isnull=True, created_at__lte=cutoff,
        ).order_by("created_at", "id")[:BATCH]
        conversations: dict[tuple[object, ...], list[Message]] = {}
        for message in due:
            conversations.setdefault(_conversation(message), []).append(message)
        for messages in conversations.values():
            done += _settle(account, messages, now)
    return done


def _settle(account: EmailAccount, messages: list[Message], now: dt.datetime) -> int:
    """Settle one conversation's due mail; 1 when it was alerted."""
    ids = [m.pk for m in messages]
    with transaction.atomic():
        # The conditional update is the "once": a second runner finds nothing left to claim.
        claimed = Message.objects.filter(pk__in=ids, unreplied_notified_at__isnull=True).update(
            unreplied_notified_at=now)
        if claimed != len(ids):
            transaction.set_rollback(True)  # another runner is settling this conversation
            return 0
        unanswered = [m for m in messages if not _answered(m)]
        if not unanswered or _alerted_already(unanswered[-1], ids):
            return 0
        _send(account, unanswered[-1])
    return 1


def _users_by_address(addresses: Iterable[str]) -> dict[str, object]:
    query = Q()
    for address in addresses:
        query |= Q(email__iexact=address)
    users = get_user_model().objects.filter(query, is_active=True).order_by("id") if query else []
    found: dict[str, object] = {}
    for user in users:
        found.setdefault(user.email.lower(), user)
    return found


def _send(account: EmailAccount, latest: Message) -> None:
    """The alert, to each address in its reader's language (a user's own, else the site's), and in
    the bell of the users those addresses belong to."""
    params = {"sender": latest.from_address, "account": account.email_address, "subject": latest.subject[:200]}
    path = f"/inbox/{latest.pk}/"  # the bell's link works at whatever address the page is open at
    url = public_url.absolute(path)  # mail needs the whole address
    recipients = _recipients(account)
    users = _users_by_address(recipients)
    languages = languages_of(users.values())
    by_language: dict[str, list[str]] = {}
    for address in recipients:
        user = users.get(address.lower())
        language = languages.get(user.pk) if user is not None else None  # type: ignore[attr-defined]
        by_language.setdefault(language or language_of(None), []).append(address)
    for language, addresses in by_language.items():
        with translation.override(language):
            text = notices.render(Notification.Kind.UNREPLIED, params)
        outbox_glue.queue(to=addresses, subject=text[:200], text=f"{text}\n\n{url}", kind="notification",
                          about_store=latest.store_id)  # the alert is about the store's mail: the store's
    for user in users.values():
        notices.send(user, Notification.Kind.UNREPLIED, f"message:{latest.pk}", params, path)
