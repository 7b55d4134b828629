"""What keeps the conversation pages live: the 'anything since?' probes the pages poll (the
conversation's also carries and answers presence), and the list's bulk actions. The views parse
the request and call buzon.workspace (live, presence, bulk); an invisible conversation is a 404."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from buzon.workspace import bulk, live, presence
from buzon.workspace.access import access_conversation
from buzon.workspace.actions import ActionRefused


@never_cache
@login_required
@require_GET
def list_changes(request: HttpRequest) -> HttpResponse:
    """Whether any conversation the caller sees changed since the token (one indexed query)."""
    answer = live.list_changes(request.user, request.GET.get("since", ""))
    return JsonResponse({"changed": answer.changed, "token": answer.token})


@never_cache
@login_required
@require_GET
def conversation_changes(request: HttpRequest, pk: int) -> HttpResponse:
    """Whether the conversation changed since the token; the caller is on it (``state``: viewing or
    typing) and learns who else is."""
    conversation = access_conversation(request.user, pk)
    answer = live.conversation_changes(conversation, request.GET.get("since", ""))
    others = presence.here(conversation.pk, request.user, request.GET.get("state", ""))
    return JsonResponse({"changed": answer.changed, "token": answer.token, "present": [
        {"name": p.name, "state": p.state, "text": p.text} for p in others]})


@login_required
@require_POST
def conversation_leave(request: HttpRequest, pk: int) -> HttpResponse:
    """The page closed: the others stop seeing the caller on it at once."""
    conversation = access_conversation(request.user, pk)
    presence.leave(conversation.pk, request.user)
    return HttpResponse(status=204)


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse("web:conversations")
    return redirect(target)


@login_required
@require_POST
def conversation_bulk(request: HttpRequest) -> HttpResponse:
    """The list's bulk action on the ticked conversations, each through its own action."""
    ids = request.POST.getlist("ids")
    seen = {int(pk): request.POST.get(f"seen_{pk}") for pk in ids if pk.isdigit()}
    try:
        outcomes = bulk.do_bulk(request.user, ids, request.POST.get("action", ""),
                                agent=request.POST.get("agent", ""), status=request.POST.get("status", ""),
                                seen_incoming_at=seen)
    except ActionRefused as refused:
        flash.error(request, refused.message)
        return _back(request)
    done = sum(1 for o in outcomes if o.result == bulk.DONE)
    flash.success(request, ngettext("%(count)d conversation changed.", "%(count)d conversations changed.",
                                    done) % {"count": done})
    skipped = [o for o in outcomes if o.result != bulk.DONE]
    for outcome in skipped[:5]:
        flash.warning(request, _("Conversation #%(id)d: %(reason)s") % {
            "id": outcome.id, "reason": outcome.message or _("not found.")})
    return _back(request)
