"""Open pixel, unsubscribe (page and RFC 8058 one-click) and the sender-confirmation link.

Each trusts nothing but its signed token (tokens.py): a forged or altered token gets a 404 for the
pixel (so it looks like any missing image) and a plain error page for the others.
"""

from __future__ import annotations

import base64
from email.utils import parseaddr

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from buzon.mailboxes.models import EmailAccount
from buzon.messages.models import Message, MessageStatus
from buzon.outbound import confirm, tokens
from buzon.outbound.models import OutgoingEmail, Unsubscribe

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@never_cache
def pixel(request: HttpRequest, token: str) -> HttpResponse:
    try:
        message_id = int(tokens.read(tokens.PIXEL, token))
    except (tokens.BadToken, TypeError, ValueError):
        return HttpResponse(status=404)
    now = timezone.now()
    with transaction.atomic():
        updated = OutgoingEmail.objects.filter(pk=message_id).update(open_count=F("open_count") + 1)
        if updated:
            # The first load marks it opened: with many recipients, one opening counts (seed 000).
            OutgoingEmail.objects.filter(pk=message_id, opened_at__isnull=True).update(opened_at=now)
            Message.objects.filter(pk=message_id, status=MessageStatus.SENT).update(
                status=MessageStatus.OPENED, updated_at=now)
    return HttpResponse(GIF, content_type="image/gif")


def _unsubscribe_target(token: str) -> tuple[EmailAccount, str, Message | None]:
    payload = tokens.read(tokens.UNSUBSCRIBE, token)
    account = EmailAccount.objects.filter(pk=payload[0]).first()
    if account is None:
        raise tokens.BadToken("account gone")
    message = Message.objects.filter(pk=payload[2], account=account).first() if len(payload) > 2 else None
    return account, str(payload[1]), message


def _recipients(message: Message | None) -> set[str]:
    if message is None:
        return set()
    return {parseaddr(a)[1].lower() for a in [*message.to, *message.cc, *message.bcc]}


def _unsubscribe(account: EmailAccount, address: str, message: Message | None) -> None:
    try:
        with transaction.atomic():
            Unsubscribe.objects.get_or_create(account=account, address=address.lower(), defaults={"message": message})
    except IntegrityError:  # clicked twice at once: already done
        pass


@csrf_exempt  # RFC 8058: the mail client POSTs without any page or cookie; the token is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        account, address, message = _unsubscribe_target(token)
    except (tokens.BadToken, TypeError, ValueError, IndexError):
        return render(request, "outbound/unsubscribe.html", {"invalid": True}, status=400)
    context = {"account": account, "address": address, "ask_address": not address}
    if request.method == "GET":
        return render(request, "outbound/unsubscribe.html", context)
    if not address:
        typed = parseaddr(request.POST.get("address", ""))[1].lower()
        if typed not in _recipients(message):
            if request.POST.get("List-Unsubscribe") == "One-Click":
                return HttpResponseBadRequest(_("This message went to several people; unsubscribe from its page."))
            context["error"] = _("That address did not receive this message.")
            return render(request, "outbound/unsubscribe.html", context, status=400)
        address = typed
    _unsubscribe(account, address, message)
    context.update({"done": True, "address": address})
    return render(request, "outbound/unsubscribe.html", context)


@require_http_methods(["GET", "POST"])
def confirm_sender(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and POST confirms, so mail scanners that fetch links confirm nothing."""
    try:
        account_id, address = tokens.read(tokens.CONFIRM, token, max_age=7 * 24 * 3600)
        account = EmailAccount.objects.get(Q(pk=account_id), Q(email_address__iexact=address))
    except (tokens.BadToken, TypeError, ValueError, EmailAccount.DoesNotExist):
        return render(request, "outbound/confirm_sender.html", {"invalid": True}, status=400)
    if request.method == "POST":
        confirm.confirm_token(token)
        return render(request, "outbound/confirm_sender.html", {"account": account, "done": True})
    return render(request, "outbound/confirm_sender.html", {"account": account})
