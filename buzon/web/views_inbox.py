"""The agent's inbox: conversations with the customer beside them, records, notifications, status.

Sender HTML is shown only as the pipeline sanitised it (nh3), inside a sandboxed frame, with remote
images blocked until the reader asks for them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from buzon import search
from buzon.core import keyset
from buzon.crm import notifications, people, roles
from buzon.crm.models import Agent, Notification
from buzon.inbound import notices
from buzon.inbound.context import describe
from buzon.inbound.mail.inline import PREVIEW_TYPES, link_inline_images
from buzon.inbound.mail.parse import part_bytes
from buzon.messages import targets
from buzon.messages.models import Attachment, Direction, Message, MessageStatus
from buzon.sync import truncate
from buzon.sync.models import RawMessage
from buzon.web.next_url import local_next

# The sanitiser (nh3) writes every attribute as name="value". Any image source but the message's own
# parts (cid:) and inline data is held back until the reader asks: whatever its spelling (" http:",
# "HTTPS:", "//host", a relative path), a browser would resolve it to a request.
_IMG_SRC_RE = re.compile(r'(<img\b[^>]*?\s)src="([^"]*)"', re.I)
_OWN_SOURCE_RE = re.compile(r"\s*(cid|data):", re.I)


# The inbox lists received mail: only the states received mail can be in are offered as filters.
INCOMING_STATUSES = [(s.value, s.label) for s in (MessageStatus.RECEIVED, MessageStatus.PROCESSED,
                                                   MessageStatus.UNPARSEABLE, MessageStatus.FAILED)]


def _filtered(request: HttpRequest) -> tuple[QuerySet[Message], dict[str, str]]:
    rows = roles.visible(Message.objects.filter(direction=Direction.INCOMING), request.user)
    # What the list shows: not the bodies (the HTML, tens of KB) nor the pipeline's decisions.
    rows = rows.select_related("customer", "agent__user", "account").defer("text", "html", "decisions", "references")
    chosen = {k: request.GET.get(k, "") for k in ("show", "store", "status", "q")}
    if chosen["show"] == "mine":
        rows = rows.filter(agent__user_id=request.user.pk or 0)
    elif chosen["show"] == "unassigned":
        rows = rows.filter(agent__isnull=True)
    if chosen["store"].isdigit():
        rows = rows.filter(store_id=int(chosen["store"]))
    if chosen["status"]:
        rows = rows.filter(status=chosen["status"])
    if chosen["q"]:  # the words, from the full-text index (buzon.search), as the inbox's search
        rows = rows.filter(search.message_condition(chosen["q"]))
    return rows, chosen


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    rows, chosen = _filtered(request)
    try:
        # Each term of the role rule (a store, the agent, what they wrote) read from its own index.
        found = keyset.page(rows, field="created_at", before=request.GET.get("before", ""),
                            after=request.GET.get("after", ""),
                            terms=roles.terms("messages_app.Message", request.user))
    except keyset.BadCursor as bad:
        return HttpResponseBadRequest(f"cursor: {bad}")
    return render(request, "web/inbox/list.html", {
        "found": found, "chosen": chosen, "stores": roles.visible_stores(request.user),
        "statuses": INCOMING_STATUSES,
        "breadcrumbs": [(_("Messages"), None)],
    })


def _safe_html(message: Message, show_images: bool) -> str:
    if show_images:
        return message.html
    def hold_back(match: re.Match[str]) -> str:
        if _OWN_SOURCE_RE.match(match.group(2)):
            return match.group(0)
        return f'{match.group(1)}data-blocked-src="{match.group(2).strip()}"'
    return _IMG_SRC_RE.sub(hold_back, message.html)


@login_required
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(roles.visible(Message.objects.select_related("customer", "agent__user", "account"),
                                              request.user), pk=pk)
    record = message.record if message.record_type_id and message.record_id else None
    target = targets.target_for(record) if record is not None else None
    mine = roles.visible_messages(request.user)
    conversation = (mine.filter(record_type_id=message.record_type_id, record_id=message.record_id)
                    .order_by("created_at", "id") if record is not None else Message.objects.none())
    show_images = request.GET.get("images") == "1"
    html = _safe_html(message, show_images) if message.html else ""
    images_blocked = bool(message.html) and html != message.html
    attachments = list(message.attachments.all())
    # Inline images (cid:) from the message's own parts, served by Buzón: never fetched remotely.
    html = link_inline_images(html, [(a.content_id, str(a.pk)) for a in attachments if a.content_id],
                              lambda pk: _inline_image_url(request.user, int(pk)))
    response = render(request, "web/inbox/message.html", {
        "message": message, "record": record, "record_token": target.token(record.pk) if target and record else "",
        "conversation": conversation[:100], "html": html, "show_images": show_images,
        "images_blocked": images_blocked,
        "decisions": [describe(d) for d in message.decisions if isinstance(d, dict)],
        "attachments": attachments, "left_out_note": _left_out_note(message),
        "customer": message.customer if message.customer and roles.can_see(request.user, message.customer) else None,
        "breadcrumbs": [(_("Messages"), "/inbox/"), (message.subject or _("(no subject)"), None)],
    })
    # The reader asked for this message's images: the CSP (buzon.web.security) lets them load here only.
    response.csp_allow_remote_images = show_images  # type: ignore[attr-defined]
    return response


def _left_out_note(message: Message) -> str:
    """What the account's attachment limit left out of the message, in the reader's language."""
    if message.raw_id is None:
        return ""
    note = RawMessage.objects.filter(pk=message.raw_id, truncated=True).values_list("truncation_note", flat=True)
    return truncate.describe(note.first() or "")


def _download_name(attachment: Attachment) -> str:
    """The sender's file name as a plain name: no folders ("../../x" is "x"), no leading dots."""
    name = re.split(r"[/\\]", attachment.filename or "")[-1]
    name = get_valid_filename(name.replace("\0", "")).lstrip(".-") if name.strip(" .") else ""
    return name[:200] or f"attachment-{attachment.pk}"


@login_required
def attachment_download(request: HttpRequest, pk: int) -> HttpResponse:
    attachments = roles.visible(Attachment.objects.select_related("message__raw"), request.user)
    attachment = get_object_or_404(attachments, pk=pk)
    raw = attachment.message.raw
    found = part_bytes(bytes(raw.data), attachment.part) if raw is not None else None
    if found is None:
        raise Http404(_("The attachment is no longer available."))
    data, _ctype = found
    response = HttpResponse(data, content_type="application/octet-stream")  # never rendered by the browser
    response["Content-Disposition"] = content_disposition_header(True, _download_name(attachment))
    response["X-Content-Type-Options"] = "nosniff"
    return response


# The message is shown in a sandboxed frame (an opaque origin), whose requests carry no session
# cookie (SameSite), so an inline image's URL carries its own proof: which user the page was shown
# to, signed, for a few hours. Each request checks again that this user may see the message.
_INLINE_SALT = "buzon.web.inline-image"
_INLINE_MAX_AGE_S = 12 * 3600


def _inline_image_url(user: Any, attachment_pk: int) -> str:
    token = signing.dumps([attachment_pk, user.pk], salt=_INLINE_SALT, compress=False)
    return f"{reverse('web:attachment-inline', args=[attachment_pk])}?{urlencode({'t': token})}"


def attachment_inline(request: HttpRequest, pk: int) -> HttpResponse:
    """An inline image (<img src="cid:...">) of a message view, or an image or text attachment
    previewed on the conversation page: shown as what it is, under a sandboxing CSP."""
    try:
        attachment_pk, user_pk = signing.loads(request.GET.get("t", ""), salt=_INLINE_SALT,
                                               max_age=_INLINE_MAX_AGE_S)
    except (signing.BadSignature, ValueError, TypeError):
        raise Http404 from None
    user = get_user_model().objects.filter(pk=user_pk, is_active=True).first() if attachment_pk == pk else None
    if user is None:
        raise Http404
    attachment = get_object_or_404(roles.visible(Attachment.objects.select_related("message__raw"), user), pk=pk)
    raw = attachment.message.raw
    found = part_bytes(bytes(raw.data), attachment.part) if raw is not None else None
    if found is None or found[1] not in PREVIEW_TYPES:
        raise Http404
    body, ctype = found
    if ctype == "text/plain":  # shown as UTF-8: read as UTF-8, else as the Windows Latin most mail uses
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("cp1252", errors="replace")
        body, ctype = text.encode("utf-8"), "text/plain; charset=utf-8"
    response = HttpResponse(body, content_type=ctype)
    response["Content-Disposition"] = "inline"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    rows = Notification.objects.filter(user_id=request.user.pk or 0).select_related("detail")
    try:
        found = keyset.page(rows, field="created_at", before=request.GET.get("before", ""),
                            after=request.GET.get("after", ""))
    except keyset.BadCursor as bad:
        return HttpResponseBadRequest(f"cursor: {bad}")
    found.rows = notices.with_texts(found.rows)  # in the reader's language, rendered now
    return render(request, "web/inbox/notifications.html", {
        "found": found,
        "unread": notifications.unread_count(request.user), "breadcrumbs": [(_("Notifications"), None)],
    })


@login_required
def bell(request: HttpRequest) -> HttpResponse:
    """The top bar's bell, asked for every minute by an open page (its count stays current, and the
    request keeps the session "last seen": buzon.crm.presence)."""
    return render(request, "web/inbox/_bell.html")


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    notifications.mark_read(request.user)
    return redirect("web:notifications")


@login_required
@require_POST
def agent_status(request: HttpRequest) -> HttpResponse:
    """The top bar's status menu: an agent sets their own status (buzon.crm.people)."""
    agent = Agent.objects.filter(user_id=request.user.pk or 0).first()
    status = request.POST.get("status", "")
    if agent is not None and status in Agent.Status.values:
        people.set_status(request.user, agent, status)
    return redirect(local_next(request, "web:inbox"))  # back to the page the menu was on, if it is ours
