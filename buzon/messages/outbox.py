"""The one way to send mail: `queue_outgoing()` records a Message (direction out, status queued).

Anything that sends (the API, the compose form, notifications, the inbound auto-reply step) calls
this. It decides which account the mail leaves through, stores the Message, hands the rest of the
request (attachments, extra headers, send time, priority) to the outgoing queue, and — only once
the transaction commits — enqueues the delivery task. `messages` never imports `outbound`: the queue
is reached through `settings.OUTBOUND_CHECK`/`OUTBOUND_ADMIT` and the task through
`settings.OUTBOUND_TASK`, all dotted paths, so the layers stay one-way.

Two steps, so many sends cost what one does (the API's batch, `queue_many`): `prepare_many`
checks every send and writes nothing (a refusal is that send's answer alone); `store_many` writes
those accepted with one insert per table. `queue_outgoing` is `queue_many` for one send.

Stores are walls for notices too. A notification (kind "notification": mail to staff, such as "new
email from …" with the customer's words, or an invitation) belongs to the store its *content* is
about, given as ``about_store`` (None: store-less content, seen by administrators only), never to
the store of the account it happens to leave through. It leaves through the site's default outgoing
account (seed 000) unless that account is another store's, then through the store's own outgoing
account when it has one (`notice_account`), and its Message row carries ``about_store`` even
then: so a notice about store B's mail sent through store A's account is never store A's mail in
anybody's lists (docs/security.md).
"""

from __future__ import annotations

import datetime
import logging
import math
import re
import unicodedata
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.template.defaultfilters import filesizeformat
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from buzon.crm import roles
from buzon.mailboxes.endpoints import attachment_limit_mb
from buzon.mailboxes.models import EmailAccount
from buzon.messages import replies, targets
from buzon.messages.models import Direction, Message, MessageStatus

KINDS = ("normal", "notification", "bulk", "auto_reply")
# Kinds the seed sends "always from the default outgoing account".
SYSTEM_KINDS = ("notification", "bulk")
# Higher is sent first: a person waiting on a reply beats a newsletter.
DEFAULT_PRIORITY = {"normal": 100, "auto_reply": 100, "notification": 50, "bulk": 10}


class SendRefused(Exception):
    """The mail cannot be queued; `str(exc)` says why in plain words (shown in the UI and API), and
    `field` names the request field it is about ("" when it is about the message as a whole)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


#: The largest id a database key holds; a longer number names nothing (and must not reach the database).
MAX_ID = 2**63 - 1


def no_such_message() -> SendRefused:
    """A reply to a message that does not exist or that the sender may not see: one answer for both,
    so the refusal tells nothing about other stores' mail."""
    return SendRefused(_("There is no message with this id or Message-ID that you can reply to."),
                       field="in_reply_to")


def no_such_account() -> SendRefused:
    return SendRefused(_("There is no email account with this id that you can send from."), field="account")


def no_such_record() -> SendRefused:
    return SendRefused(_("There is no such record that you can see."), field="record")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str = "application/octet-stream"


@dataclass
class ComposeRequest:
    """What the Message row has no column for; the outgoing queue keeps it next to the Message."""

    kind: str = "normal"
    priority: int = 100
    attachments: Sequence[Attachment] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    send_at: datetime.datetime | None = None
    #: The HTML as written, when the queue's check sanitised the Message's copy (OUTBOUND_CHECK).
    html_source: str = ""


def default_outgoing_account() -> EmailAccount | None:
    return EmailAccount.objects.filter(outgoing_enabled=True, default_outgoing=True).order_by("id").first()


def conversation_account(record: models.Model | None, parent: Message | None) -> EmailAccount | None:
    """The account the conversation runs through: the replied-to message's, else the record's latest."""
    if parent is not None and parent.account is not None:
        return parent.account
    if record is None or record.pk is None:
        return None
    latest = (
        Message.objects.filter(record_type=ContentType.objects.get_for_model(record), record_id=record.pk)
        .exclude(account=None).select_related("account").order_by("-created_at", "-id").first()
    )
    return latest.account if latest else None


def notice_account(store_id: int | None) -> EmailAccount | None:
    """The account a notification about ``store_id``'s content leaves through. Seed 000 §3.4: the
    default outgoing account ("notifications and bulk mail are sent from this server"), when it is the
    site's (store-less) or this store's own. When the default belongs to another store, a notice with
    this store's customer's words would sit in that store's mailbox (its Sent folder, its bounces):
    it leaves through this store's own outgoing account instead (its default one first, else the
    oldest), and through the default only when the store has none."""
    default = default_outgoing_account()
    if default is not None and (default.store_id is None or default.store_id == store_id):
        return default
    if store_id is not None:
        own = EmailAccount.objects.filter(store_id=store_id, outgoing_enabled=True).order_by(
            "-default_outgoing", "id").first()
        if own is not None:
            return own
    return default


def store_account(user: Any) -> EmailAccount | None:
    """The outgoing account of a store ``user`` works in (the default outgoing one when it is theirs,
    else the oldest). A store's agent writes to its customers as the store, so the answers come back
    to the store's mailbox; the default outgoing account is for notifications and bulk mail (seed 000
    §3.4) and may be a store-less notifications address, or another store's."""
    stores = roles.store_ids(user)
    if not stores:
        return None
    return EmailAccount.objects.filter(store_id__in=stores, outgoing_enabled=True).order_by(
        "-default_outgoing", "id").first()


def _no_account_for_user() -> SendRefused:
    return SendRefused(_("There is no outgoing email account you may send this from. "
                         "Ask an administrator to give you one."))


def choose_account(*, account: EmailAccount | None, kind: str, record: models.Model | None = None,
                   parent: Message | None = None, user: Any = None,
                   about_store: int | None = None, sendable: Container[int] = ()) -> EmailAccount:
    """Seed 000 §3.4: the given account; else the conversation's; else the user's own; else their store's
    (`store_account`); else the default.

    Notifications leave through the default outgoing account, or the account of the store they are
    about (``about_store``) when the default is another store's (`notice_account`); bulk mail through
    the default. Mail a person
    sends (``user`` given) leaves only through an account they may send through (roles): one they
    name must be theirs, and an automatic choice passes over the others (another store's account that
    carried the conversation, say). Buzón's own mail (no ``user``) may use any. ``sendable``: ids of
    accounts the caller already found among `roles.sendable_accounts(user)` (a batch asks once).
    """
    def usable(candidate: EmailAccount) -> bool:
        return user is None or candidate.pk in sendable or roles.may_send_through(user, candidate)

    if kind in SYSTEM_KINDS:
        chosen = notice_account(about_store) if kind == "notification" else default_outgoing_account()
        if chosen is None:
            if user is not None and not roles.may_choose_default_accounts(user):  # the advice is for those who can
                raise _no_account_for_user()
            raise SendRefused(_("No default outgoing email account is set up, so notifications cannot be sent."))
        if not usable(chosen):
            raise _no_account_for_user()
        return chosen
    if account is not None and kind == "auto_reply" and not account.outgoing_enabled:
        # An account that only receives still answers: through its store's outgoing account, else the default.
        account = notice_account(account.store_id)
    if account is not None:
        if not usable(account):
            raise no_such_account()
        if not account.outgoing_enabled:
            raise SendRefused(_("The account %(address)s does not send mail (outgoing is not enabled).")
                              % {"address": account.email_address})
        return account
    candidates: list[EmailAccount | None] = [conversation_account(record, parent)]
    if user is not None and getattr(user, "pk", None):
        candidates.append(EmailAccount.objects.filter(owner=user, outgoing_enabled=True).order_by("id").first())
        candidates.append(store_account(user))
    for candidate in candidates:
        if candidate is not None and candidate.outgoing_enabled and usable(candidate):
            return candidate
    chosen = default_outgoing_account()
    if chosen is None:
        if user is not None and not roles.may_choose_default_accounts(user):  # the advice is for those who can
            raise _no_account_for_user()
        raise SendRefused(_("There is no outgoing email account to send this from. "
                            "Set one up and mark it as default outgoing."))
    if not usable(chosen):
        raise _no_account_for_user()
    return chosen


def split_addresses(text: str) -> list[str]:
    """Addresses typed in one string, separated by commas or semicolons; a quoted name may hold either
    ('"Pérez, Ana" <ana@ejemplo.es>; luis@ejemplo.es' is two addresses)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char in ",;" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _addresses(values: Iterable[str] | str) -> list[str]:
    if isinstance(values, str):
        return split_addresses(values)
    return [v.strip() for v in values if v and v.strip()]


def _parent(in_reply_to: Message | int | str | None, user: Any) -> Message | None:
    """`in_reply_to` may be a Message, its id in Buzón, or a Message-ID header.

    A person's reference (``user`` given) is looked up among the messages they may see (roles): one
    they may not see is refused exactly like one that does not exist (`no_such_message`), so a reply
    can neither leave through another store's account nor join its record.
    """
    if in_reply_to is None or in_reply_to == "":
        return None
    if isinstance(in_reply_to, Message):
        if user is not None and not roles.can_see(user, in_reply_to):
            raise no_such_message()
        return in_reply_to
    seen = Message.objects.all() if user is None else roles.visible_messages(user)
    reference = str(in_reply_to).strip()
    if isinstance(in_reply_to, int) or reference.isdigit():
        number = int(reference)
        found = seen.filter(pk=number).first() if 0 < number <= MAX_ID else None
    else:
        found = seen.filter(message_id=reference).order_by("-id").first() if reference else None
    if found is None:
        raise no_such_message()
    return found


def _visible_record(record: models.Model | None, user: Any) -> models.Model | None:
    if record is not None and user is not None and not roles.can_see(user, record):
        raise no_such_record()
    return record


def _breaks_a_header(value: str) -> bool:
    """A line break (CR, LF, or Unicode's) or another control character: in a header it would end the
    line and start a header of the sender's choosing, or make the message impossible to compose."""
    return any(char != "\t" and unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in value)


#: RFC 2045 type "/" subtype, each a token (no parameters: the file's own type is all that is asked).
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`{|}~-]+/[A-Za-z0-9!#$%&'*+.^_`{|}~-]+")
#: RFC 5322 field name: printable ASCII but the colon.
_HEADER_NAME = re.compile(r"[!-9;-~]+")


def check_header_fields(subject: str, attachments: Sequence[Attachment], headers: Mapping[str, str]) -> None:
    """Everything of the request that ends up in a header line, checked before anything is queued: a
    value that could never be composed is refused here, naming its field, instead of failing later
    in the worker (or worse, adding headers)."""
    if _breaks_a_header(subject):
        raise SendRefused(_("The subject must be a single line, without line breaks or control characters."),
                          field="subject")
    for number, attachment in enumerate(attachments, start=1):
        if _breaks_a_header(attachment.filename):
            raise SendRefused(_("Attachment %(number)s: its file name has a line break or a control character. "
                                "Rename the file and attach it again.") % {"number": number}, field="attachments")
        if not _CONTENT_TYPE.fullmatch(attachment.mimetype):
            raise SendRefused(_("Attachment %(number)s: its content type is not a type such as application/pdf "
                                "or image/png.") % {"number": number}, field="attachments")
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name) or _breaks_a_header(value):
            raise SendRefused(_("The header %(name)s cannot be sent: a header is one line of text, its name "
                                "without spaces or colons.") % {"name": name.encode("unicode_escape").decode()},
                              field="headers")


def _subject_with_token(subject: str, record: models.Model | None) -> str:
    """Mail about a record names it in the subject with its check code ("[#T-12-k3x9q2ab]") so answers
    find it even without headers. A token for it without the code (typed, or from a reply to mail
    written before codes) is replaced by the coded one; other records' tokens are left as written."""
    target = targets.target_for(record) if record is not None else None
    if record is None or target is None:
        return subject
    token = targets.record_token(record)
    ours = [n for n in targets.find_tokens(subject) if n.target is target and n.record_id == record.pk]
    if any(n.tag_valid for n in ours):
        return subject
    if ours:
        subject = targets.strip_record_tokens(subject, only=ours)
    return f"{subject} {token}".strip()


def _check_attachment_size(attachments: Sequence[Attachment], account: EmailAccount) -> None:
    """The account's attachment limit (its own, else its domain's) applies to what it sends too, checked
    here so the user hears it at once instead of from a failed message later. Base64 makes the mail
    a third larger; the server's own SIZE limit is checked again when it is sent."""
    total = sum(len(a.content) for a in attachments)
    limit = attachment_limit_mb(account) * 1024 * 1024
    if total > limit:
        raise SendRefused(_("The attachments add up to %(size)s, more than the %(limit)s that %(address)s may send. "
                            "Remove some, or send links to the files.")
                          % {"size": filesizeformat(total), "limit": filesizeformat(limit),
                             "address": account.email_address})


def _message_id_domain(account: EmailAccount) -> str:
    return account.email_address.rpartition("@")[2] or "buzon.invalid"


@dataclass
class Outgoing:
    """One send, checked and not yet stored (`prepare_many`): the unsaved Message, the rest of the
    request, and the record it is about (`store_many` writes them)."""

    message: Message
    request: ComposeRequest
    record: models.Model | None
    user: Any


def prepare_outgoing(*, to: Iterable[str] | str, subject: str, text: str = "", html: str = "",
                     cc: Iterable[str] | str = (), bcc: Iterable[str] | str = (), account: EmailAccount | None = None,
                     kind: str = "normal", in_reply_to: Message | int | str | None = None,
                     record: models.Model | None = None, user: Any = None, attachments: Sequence[Attachment] = (),
                     headers: Mapping[str, str] | None = None, send_at: datetime.datetime | None = None,
                     priority: int | None = None, template: str = "", language: str | None = None,
                     context: Mapping[str, Any] | None = None, about_store: int | None = None,
                     sendable: Container[int] = ()) -> Outgoing:
    """`queue_outgoing`'s checks and choices, written nowhere: raises SendRefused with the reason.
    The queue's own checks (`settings.OUTBOUND_CHECK`) come after, in `prepare_many`."""
    if kind not in KINDS:
        raise SendRefused(_("Unknown kind of mail: %(kind)s.") % {"kind": kind})
    if template:
        rendered = import_string(settings.OUTBOUND_RENDER_TEMPLATE)(
            template, language=language, record=record, user=user, account=account, extra=dict(context or {}))
        if rendered is not None:
            subject, text, html = rendered.subject, rendered.text, rendered.html or html
    to_list, cc_list, bcc_list = _addresses(to), _addresses(cc), _addresses(bcc)
    if not (to_list or cc_list or bcc_list):
        raise SendRefused(_("Add at least one recipient."))
    if not (text or html):
        raise SendRefused(_("The message has no text."))
    if user is None:  # Buzón's own mail (auto-replies, notices) quotes the subjects of incoming mail: one line
        subject = " ".join(subject.split())
    check_header_fields(subject, attachments, headers or {})
    parent = _parent(in_reply_to, user)
    record = _visible_record(record, user)
    if record is None and parent is not None and parent.record is not None:
        # The reply joins the parent's record only where the sender may see that record too.
        record = parent.record if user is None or roles.can_see(user, parent.record) else None
    if about_store is not None and kind != "notification":
        raise ValueError("about_store is for notifications only")  # a caller's mistake, not user input
    chosen = choose_account(account=account, kind=kind, record=record, parent=parent, user=user,
                            about_store=about_store, sendable=sendable)
    # A notice belongs to the store it is about (None: store-less), an auto-reply to the receiving
    # account's store: neither to the store of the account that happens to carry it.
    store_id = chosen.store_id
    if kind == "notification":
        store_id = about_store
    elif kind == "auto_reply" and account is not None:
        store_id = account.store_id
    _check_attachment_size(attachments, chosen)
    request = ComposeRequest(kind=kind, priority=DEFAULT_PRIORITY[kind] if priority is None else priority,
                             attachments=tuple(attachments), headers=dict(headers or {}), send_at=send_at)
    subject = _subject_with_token(subject, record)
    references = ""
    if parent is not None and parent.message_id:
        references = " ".join(part for part in (parent.references.strip(), parent.message_id) if part)
    message = Message(
        direction=Direction.OUTGOING, account=chosen, store_id=store_id, status=MessageStatus.QUEUED,
        message_id=make_msgid(domain=_message_id_domain(chosen)),
        in_reply_to=parent.message_id if parent is not None else "", references=references,
        subject=subject, from_address=chosen.email_address, to=to_list, cc=cc_list, bcc=bcc_list,
        text=text, html=html, created_by=user if getattr(user, "pk", None) else None,
        record_type=ContentType.objects.get_for_model(record) if record is not None else None,
        record_id=record.pk if record is not None else None,
        # A reply is the customer's mail too (their card, their messages), within the same store.
        customer_id=parent.customer_id if parent is not None and parent.store_id == store_id else None,
    )
    message.store_given = True  # a store-less notice stays store-less (Message.save)
    return Outgoing(message=message, request=request, record=record, user=user)


def prepare_many(sends: Sequence[Mapping[str, Any]]) -> list[Outgoing | SendRefused]:
    """Each send (`prepare_outgoing`'s keyword arguments) checked on its own, in order: its Outgoing, or
    the SendRefused that says why it cannot be queued. Nothing is written; the queue's checks
    (`settings.OUTBOUND_CHECK`: addresses, a confirmed sender, unsubscribed recipients) run once
    for all of them, so a batch asks the database once per account, not once per message."""
    results: list[Outgoing | SendRefused] = []
    for arguments in sends:
        try:
            results.append(prepare_outgoing(**arguments))
        except SendRefused as refused:
            results.append(refused)
    prepared = [(index, r) for index, r in enumerate(results) if isinstance(r, Outgoing)]
    verdicts = import_string(settings.OUTBOUND_CHECK)([(r.message, r.request) for _index, r in prepared])
    for (index, _send), verdict in zip(prepared, verdicts, strict=True):
        if verdict is not None:
            results[index] = verdict
    return results


def _place(messages: Sequence[Message]) -> list[Any]:
    """Conversations for the messages (`placement`): those that start one get theirs in one insert;
    a reply, mail about a record, or mail written inside a conversation (`placement.joining`) is
    placed one by one, by the rules of `placement.place`. Returns the conversations made in bulk."""
    from buzon.messages import placement

    starting: list[tuple[Message, None]] = []
    for message in messages:
        if message.in_reply_to or message.record_id is not None or placement.joined() is not None:
            placement.place(message)
        else:
            starting.append((message, None))
    return placement.place_many(starting)


def store_many(sends: Sequence[Outgoing]) -> None:
    """Write checked sends (`prepare_many`), in one transaction: each Message in its conversation,
    its queue entry (`settings.OUTBOUND_ADMIT`), and a person's reply marks its ticket Replied.
    One insert per table, whatever the number of sends."""
    if not sends:
        return
    from buzon.messages import placement
    from buzon.sync.fastinsert import insert_rows_returning

    messages = [send.message for send in sends]
    with transaction.atomic(savepoint=False):  # the caller's transaction, if any: nothing to undo alone
        fresh = _place(messages)
        insert_rows_returning(messages)
        placement.record_activity(messages, fresh)
        import_string(settings.OUTBOUND_ADMIT)([(send.message, send.request) for send in sends])
        for send in sends:
            replies.after_outgoing(send.record, kind=send.request.kind, user=send.user)


def queue_many(sends: Sequence[Mapping[str, Any]]) -> list[Message | SendRefused]:
    """Queue every send (`prepare_outgoing`'s keyword arguments): for each, in order, its Message
    (status queued) or the SendRefused that says why it was not queued.

    Every check runs before anything is written (`prepare_many`), so a refused send is that send's
    answer alone and never stops the others (as Postmark's batch answers each message on its own).
    The accepted ones are written together (`store_many`) and committed at once, or none is: a
    request that fails before its commit (a crash, a database error: a 5xx or no answer) queued
    nothing, so sending the whole batch again sends no message twice; only a connection lost after
    the commit leaves the client unsure, as with a single send (no idempotency key either). On
    SQLite the write lock is held while the rows are written, not while the sends are checked.
    Once committed, mail that is due now shares one delivery task; mail for later, one per send time.
    """
    prepared = prepare_many(sends)
    accepted = [send for send in prepared if isinstance(send, Outgoing)]
    if accepted:
        first_of: dict[datetime.datetime | None, int] = {}  # send time -> a message that starts its task
        with transaction.atomic():
            store_many(accepted)
            for send in accepted:
                first_of.setdefault(send.request.send_at, send.message.pk)
            for run_after, message_id in first_of.items():
                transaction.on_commit(lambda m=message_id, r=run_after: enqueue_after_commit(m, r))  # type: ignore[misc]
    return [send.message if isinstance(send, Outgoing) else send for send in prepared]


def queue_outgoing(**arguments: Any) -> Message:
    """Queue one email and return its Message (status queued). Raises SendRefused with the reason.
    The arguments are `prepare_outgoing`'s:

    ``about_store`` (kind "notification" only) is the id of the store whose content the notice
    carries, None for store-less content: the Message belongs to it whatever account sends it.

    `template` names an email template (by key): when one exists, its subject and bodies (rendered
    with the record, its customer, the user and `context`) replace the `subject`/`text`/`html`
    given, which remain the fallback. This is how notifications use the templates admins edit.

    ``sendable``: see `choose_account`.
    """
    (result,) = queue_many([arguments])
    if isinstance(result, SendRefused):
        raise result
    return result


def enqueue_after_commit(message_id: int, run_after: datetime.datetime | None) -> None:
    """The message is queued once committed: a task queue outage (Redis restarting) must not make
    the caller believe otherwise and queue it again. The workers' periodic outbound sweep
    (settings.PERIODIC_TASKS) delivers it without this task."""
    try:
        enqueue_delivery(message_id, run_after)
    except Exception:
        if settings.TASK_BACKEND_NAME == "immediate":  # the task itself ran and failed: show it (tests)
            raise
        logging.getLogger("buzon.outbound").exception("could not enqueue delivery of message %s", message_id)


#: On Redis: set while a delivery task is queued and has not started (see enqueue_delivery).
DELIVERY_WAITING_KEY = "buzon:outbound:delivery-waiting"


def _delivery_waiting_redis() -> Any:
    if settings.TASK_BACKEND_NAME != "rq" or not settings.REDIS_URL:
        return None
    from buzon.core import redis_client

    return redis_client.client()


def delivery_started() -> None:
    """The delivery task calls this first, before it claims anything: mail committed from now on
    needs a task of its own."""
    redis = _delivery_waiting_redis()
    if redis is not None:
        try:
            redis.delete(DELIVERY_WAITING_KEY)
        except Exception:  # the mark expires by itself; the next enqueue then sends a task
            logging.getLogger("buzon.outbound").warning("could not clear the delivery-waiting mark", exc_info=True)


def _another_delivery_waits() -> bool:
    """One task per queued message would make the workers pay a task's fixed cost per message (each
    task delivers whatever is due), and the request that queues it a second write. While a delivery
    task is queued and has not yet started, it will claim this committed message too (this is asked
    after the commit, and a task claims mail only once it has started): no second task. On Redis the
    mark expires after OUTBOUND_COALESCE_S, plus OUTBOUND_LINGER_MAX_S since the waiting task may
    wait that long behind one that lingers (buzon.outbound.sender): a mark that expired sooner would
    let every send past it queue one more task, and under steady sending they would pile up. A task
    lost with Redis costs at most that (the periodic sweep, every 30 s, sends its mail meanwhile);
    the database queue is asked directly. OUTBOUND_COALESCE_S = 0: a task each."""
    if settings.OUTBOUND_COALESCE_S <= 0:
        return False
    if settings.TASK_BACKEND_NAME == "db":
        return _delivery_task_waiting_in_database()
    redis = _delivery_waiting_redis()
    if redis is None:
        return False
    try:
        return not redis.set(DELIVERY_WAITING_KEY, "1", nx=True, ex=delivery_mark_s())
    except Exception:  # Redis unreachable: enqueue as usual (and that reports the outage)
        return False


def delivery_mark_s() -> int:
    """How long the Redis mark of a waiting delivery task lasts (see _another_delivery_waits)."""
    return settings.OUTBOUND_COALESCE_S + math.ceil(settings.OUTBOUND_LINGER_MAX_S)


def _delivery_task_waiting_in_database() -> bool:
    """A delivery task in the database queue, due and not yet taken by a worker (a read: no write lock)."""
    task = import_string(settings.OUTBOUND_TASK)
    if not type(task.get_backend()).__module__.startswith("django_tasks_db"):
        return False
    from django_tasks_db.models import DBTaskResult

    return bool(DBTaskResult.objects.ready().filter(task_path=task.module_path, queue_name=task.queue_name,
                                                    backend_name=task.backend).exists())


def enqueue_delivery(message_id: int, run_after: datetime.datetime | None = None) -> None:
    """Ask the task worker to deliver; a backend that cannot defer runs it now (the queue re-checks time)."""
    if run_after is None and _another_delivery_waits():
        return
    task = import_string(settings.OUTBOUND_TASK)
    if run_after is not None and task.get_backend().supports_defer:
        task = task.using(run_after=run_after)
    task.enqueue(message_id)
