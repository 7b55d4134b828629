"""Conversations in the web UI: the list (keyset pages), one conversation's whole thread with the
Reply box, status and assignee. Views parse the request and call buzon.workspace; an invisible
conversation is a 404, as a missing one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from buzon.crm import customers as cards
from buzon.crm import roles
from buzon.crm.models import Agent
from buzon.inbound.mail.inline import PREVIEW_TYPES, link_inline_images
from buzon.messages.conversations import Conversation, ConversationStatus
from buzon.messages.models import Message
from buzon.messages.quoting import split_quoted
from buzon.web.account_choice import account_choices
from buzon.web.views_inbox import _inline_image_url, _safe_html
from buzon.workspace import actions, forwarding, history, live, merging, preferences, reads, searching
from buzon.workspace.access import access_conversation
from buzon.workspace.models import ConversationNote


def _chosen(request: HttpRequest) -> tuple[dict[str, str], dict[str, str] | None]:
    """The view and filters: those the request names (then kept as the user's choice), else the
    ones the user chose last time (UserPreferences.inbox_filters), on any device; and those saved
    ones when they are what is chosen (else None)."""
    if any(name in request.GET for name in reads.FILTERS):
        chosen = {name: request.GET.get(name, "").strip() for name in reads.FILTERS}
        saved = {k: v for k, v in chosen.items() if v}
        if saved != preferences.inbox_filters(request.user):
            preferences.keep_inbox_filters(request.user, saved)
        return chosen, None
    saved = preferences.inbox_filters(request.user)
    return {name: str(saved.get(name, "")) for name in reads.FILTERS}, saved


def _drop_unseen(user: Any, chosen: dict[str, str], saved: dict[str, str], accounts: dict[str, Any],
                 agents: list[Agent], customer: Any) -> None:
    """Saved filters naming what the user no longer sees (moved to another store, a colleague gone)
    are dropped, and the choice kept without them: the list would be empty with no filter shown."""
    listed = {str(a.pk) for a in accounts["accounts"]} | (
        {str(accounts["chosen_extra"].pk)} if accounts["chosen_extra"] else set())
    unseen = [name for name, seen in (("account", chosen["account"] in listed),
                                      ("agent", chosen["agent"] in {str(a.pk) for a in agents}),
                                      ("customer", customer is not None)) if chosen[name] and not seen]
    for name in unseen:
        chosen[name] = ""
    kept = {k: v for k, v in chosen.items() if v}
    if kept != saved:
        preferences.keep_inbox_filters(user, kept)


@login_required
def conversation_list(request: HttpRequest) -> HttpResponse:
    chosen, saved = _chosen(request)
    if chosen["view"] == "all" and not roles.is_admin(request.user):
        chosen["view"] = ""  # "all" is every store's mail: for administrators; others see theirs
    stores = list(roles.visible_stores(request.user))
    agent_rows = Agent.objects.select_related("user").order_by("user__first_name", "user__username")
    if not roles.is_admin(request.user):
        agent_rows = agent_rows.filter(stores__in=[s.pk for s in stores]).distinct()
    agents = list(agent_rows)
    if saved is not None and chosen["store"] not in {"", *(str(s.pk) for s in stores)}:
        chosen["store"] = ""
    accounts = account_choices(request.user, chosen=chosen["account"], store=chosen["store"])
    customer = (roles.visible_customers(request.user).filter(pk=chosen["customer"]).annotate(
        first_email=cards.first_address("pk")).first() if chosen["customer"].isdigit() else None)
    if saved is not None:
        _drop_unseen(request.user, chosen, saved, accounts, agents, customer)
    live_token = live.list_changes(request.user).token  # taken before the rows: nothing slips between
    q = request.GET.get("q", "").strip()
    try:
        found: Any = (searching.search_page(request.user, q, chosen, cursor=request.GET.get("cursor", "")) if q else
                      reads.page(request.user, chosen, before=request.GET.get("before", ""),
                                 after=request.GET.get("after", "")))
    except reads.BadFilter as bad:
        return HttpResponseBadRequest(f"{bad.field}: {bad}")
    return render(request, "web/conversations/list.html", {
        "found": found, "q": q, "chosen": chosen, "live_token": live_token, "is_admin": roles.is_admin(request.user),
        "stores": stores, "statuses": ConversationStatus.choices, **accounts,
        "agents": agents, "me": roles.agent_of(request.user), "customer": customer,
        "filtered": any(chosen.values()),
        "breadcrumbs": [(_("Inbox"), None)],
    })


#: Messages a conversation page shows (its oldest; a longer thread is rare and read elsewhere).
THREAD_SHOWN = 500


def _thread(request: HttpRequest, conversation_pk: int, show_images: bool) -> list[dict[str, object]]:
    rows = Message.objects.filter(conversation_id=conversation_pk).order_by("created_at", "id")
    shown = []
    for message in rows.prefetch_related("attachments")[:THREAD_SHOWN]:
        attachments = list(message.attachments.all())
        html = _safe_html(message, show_images) if message.html else ""
        blocked = bool(message.html) and html != message.html
        html = link_inline_images(html, [(a.content_id, str(a.pk)) for a in attachments if a.content_id],
                                  lambda pk: _inline_image_url(request.user, int(pk)))
        own, quoted = split_quoted(message.text or "") if not html else (message.text, "")
        for attachment in attachments:  # images and text previewed beside the download (signed URL)
            previewed = attachment.content_type in PREVIEW_TYPES and not attachment.content_id
            url = _inline_image_url(request.user, attachment.pk) if previewed else ""
            attachment.preview_url = url  # type: ignore[attr-defined]
        shown.append({"message": message, "html": html, "images_blocked": blocked, "attachments": attachments,
                      "text": own, "quoted": quoted})
    return shown


def _timeline(thread: list[dict[str, object]], conversation_pk: int) -> list[dict[str, object]]:
    """The thread with the conversation's internal notes among the messages, in time order."""
    notes = ConversationNote.objects.filter(conversation_id=conversation_pk).select_related("author")
    items = thread + [{"note": note} for note in notes.order_by("created_at", "id")[:500]]

    def when(item: dict[str, Any]) -> tuple[Any, bool]:
        return (item.get("message") or item["note"]).created_at, "note" in item

    return sorted(items, key=when)


@login_required
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = access_conversation(request.user, pk)
    if conversation.merged_into_id:  # merged: its messages are in the one it became
        return redirect(reverse("web:conversation", args=[conversation.merged_into_id]))
    show_images = request.GET.get("images") == "1"
    thread = _thread(request, conversation.pk, show_images)
    actions.mark_opened(request.user, conversation)
    response = render(request, "web/conversations/detail.html", {
        "conversation": conversation, "thread": thread, "show_images": show_images,
        "timeline": _timeline(thread, conversation.pk), "note_text": request.session.pop(f"note-{conversation.pk}", ""),
        "canned_url": reverse("api:canned-response-list") + (
            f"?store={conversation.store_id}" if conversation.store_id else ""),
        "images_blocked": any(item["images_blocked"] for item in thread),
        "statuses": ConversationStatus.choices, "agents": actions.assignable_agents(conversation),
        "events": history.described(conversation.events.select_related("actor")[:100]),
        "merge_candidates": reads.merge_candidates(request.user, conversation),
        "reply_all_cc": _reply_all_cc(conversation, thread),
        "forward": request.session.pop(f"forward-{conversation.pk}", {}),
        "reply_text": request.session.pop(f"reply-{conversation.pk}", ""),
        "breadcrumbs": [(_("Inbox"), reverse("web:conversations")),
                        (conversation.subject or _("(no subject)"), None)],
    })
    response.csp_allow_remote_images = show_images  # type: ignore[attr-defined]
    return response


def _reply_all_cc(conversation: Any, thread: list[dict[str, Any]]) -> list[str]:
    """Who else a reply-all would write to (the button shows only when there is someone)."""
    messages = [item["message"] for item in thread]
    parent = actions.answered_message(conversation, messages if len(messages) < THREAD_SHOWN else None)
    if parent is None:
        return []
    to = [a for a in (parent.reply_to or [parent.from_address]) if a] if parent.direction == "in" else list(parent.to)
    return actions.reply_all_cc(parent, to)


def _back(pk: int) -> HttpResponse:
    return redirect(reverse("web:conversation", args=[pk]))


@login_required
@require_POST
def conversation_reply(request: HttpRequest, pk: int) -> HttpResponse:
    text = request.POST.get("text", "")
    try:
        actions.do_reply(request.user, pk, text=text, reply_all=request.POST.get("reply_all") == "1")
    except actions.ActionRefused as refused:
        flash.error(request, refused.message)
        request.session[f"reply-{pk}"] = text  # the words written are kept for the next try
        return _back(pk)
    flash.success(request, _("Your reply is on its way."))
    return _back(pk)


@login_required
@require_POST
def conversation_note(request: HttpRequest, pk: int) -> HttpResponse:
    """Add an internal note (never mailed); colleagues it @mentions who may see it are told."""
    text = request.POST.get("text", "")
    try:
        actions.do_add_note(request.user, pk, text)
    except actions.ActionRefused as refused:
        flash.error(request, refused.message)
        request.session[f"note-{pk}"] = text
        return _back(pk)
    flash.success(request, _("Your note is added. It is not sent to the customer."))
    return redirect(reverse("web:conversation", args=[pk]) + "#thread-end")


@login_required
@require_POST
def conversation_status(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        actions.do_set_status(request.user, pk, request.POST.get("status", ""),
                              seen_incoming_at=request.POST.get("seen_incoming_at"))
    except actions.ActionRefused as refused:
        flash.error(request, refused.message)
    return _back(pk)


@login_required
@require_POST
def conversation_assign(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        actions.do_assign(request.user, pk, request.POST.get("agent", ""))
    except actions.ActionRefused as refused:
        flash.error(request, refused.message)
    return _back(pk)


def _acted(request: HttpRequest, pk: int, act: Callable[[], Any], done: str, *,
           keep: dict[str, Any] | None = None) -> HttpResponse:
    """Run a workspace action for the conversation page: on success say ``done`` and open the
    conversation it leaves (its ``pk``, else this one); refused, say why, keep what was typed
    (``keep``, for the form's next showing) and come back."""
    try:
        result = act()
    except actions.ActionRefused as refused:
        flash.error(request, refused.message)
        if keep is not None:
            request.session[f"forward-{pk}"] = keep
        return _back(pk)
    flash.success(request, done)
    return _back(result.pk if isinstance(result, Conversation) else pk)


@login_required
@require_POST
def conversation_merge(request: HttpRequest, pk: int) -> HttpResponse:
    """Merge the conversation chosen (``other``) into this one."""
    other = request.POST.get("other", "").strip().lstrip("#") or request.POST.get("other_choice", "")
    return _acted(request, pk, lambda: merging.do_merge(request.user, pk, other),
                  _("The conversations are merged: every message is here."))


@login_required
@require_POST
def conversation_move_out(request: HttpRequest, pk: int) -> HttpResponse:
    """Move one message out into a new conversation of its own; the page of the new one opens."""
    return _acted(request, pk, lambda: merging.do_move_out(request.user, pk, request.POST.get("message", "")),
                  _("The message is now a conversation of its own."))


@login_required
@require_POST
def conversation_forward(request: HttpRequest, pk: int) -> HttpResponse:
    to = [a.strip() for a in request.POST.get("to", "").replace(";", ",").split(",") if a.strip()]
    text = request.POST.get("text", "")
    return _acted(request, pk, lambda: forwarding.do_forward(request.user, pk, to=to, text=text,
                                                            message_id=request.POST.get("message")),
                  _("Your forward is on its way."), keep={"to": request.POST.get("to", ""), "text": text})
