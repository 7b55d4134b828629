"""`POST /api/v1/messages/send/batch/`: up to MAX_BATCH messages in one request.

Each item is what `POST /api/v1/messages/send/` takes, checked by the same serializer (so the same
role rules: an account, record or message the caller may not use is refused as missing) and queued by
the same checks as `queue_outgoing`. Items are answered one by one, in order, as Postmark's batch does: a bad
item is refused with the errors a single send would give in its 400, and the others are queued.
The accepted ones are committed together (`buzon.messages.outbox.queue_many`); the batch starts one
delivery task. The answer is 200 even when every item is refused; a body that is not a list, an empty
list or a list over the limit is a 400 and queues nothing.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buzon.api.outbound import SendSerializer, send_arguments, sent
from buzon.crm import roles
from buzon.mailboxes.models import EmailAccount
from buzon.messages.outbox import MAX_ID, SendRefused, queue_many

#: Postmark's batch limit. On SQLite a batch holds the write lock while it is stored
#: (seconds at 500 on a loaded 2-core machine).
MAX_BATCH = 500


#: One item's outcome: queued (id, message_id, account), or refused with the errors a single send gives.
#: ("errors" would shadow a Serializer's own attribute in a class body.)
BatchResult = inline_serializer("BatchSendResult", fields={
    "status": serializers.ChoiceField(choices=["queued", "refused"]),
    "id": serializers.IntegerField(required=False),
    "message_id": serializers.CharField(required=False),
    "account": serializers.CharField(required=False),
    "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                    help_text="Field -> why, as in a single send's 400"),
}, many=True)


def _refused(errors: Any) -> dict[str, Any]:
    if not isinstance(errors, dict):
        errors = {"detail": errors if isinstance(errors, list) else [errors]}
    return {"status": "refused", "errors": {field: [str(e) for e in (value if isinstance(value, list) else [value])]
                                            for field, value in errors.items()}}


def _sendable_accounts(user: Any, items: list[Any]) -> dict[int, EmailAccount]:
    """The accounts the items name that ``user`` may send through (`roles.sendable_accounts`, the single
    send's rule), in one query instead of two an item (the serializer's and `choose_account`'s),
    each with its domain (its attachment limit), shared by the items naming it."""
    named = {item["account"] for item in items if isinstance(item, dict) and isinstance(item.get("account"), int)
             and not isinstance(item["account"], bool) and 0 < item["account"] <= MAX_ID}
    if not named:
        return {}
    found = roles.sendable_accounts(user).filter(pk__in=named).select_related("domain")
    return {account.pk: account for account in found}


class BatchSendView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=SendSerializer(many=True), responses={200: BatchResult})
    def post(self, request: Request) -> Response:
        """Queue up to 500 emails, each like `messages/send/`; 200 with each one's result, in order."""
        items = request.data
        if not isinstance(items, list):
            raise ValidationError({"detail": [_("Send a JSON list of messages, each like a single send's.")]})
        if not items:
            raise ValidationError({"detail": [_("The list is empty: give at least one message.")]})
        if len(items) > MAX_BATCH:
            raise ValidationError({"detail": [_("A batch holds at most %(limit)s messages; this one has %(count)s. "
                                                "Split it.") % {"limit": MAX_BATCH, "count": len(items)}]})
        results: list[dict[str, Any] | None] = [None] * len(items)
        valid: list[tuple[int, dict[str, Any]]] = []
        accounts = _sendable_accounts(request.user, items)
        # One serializer checks every item, as DRF's ListSerializer does with its child: building one
        # copies its fields, which cost more than checking an item.
        form = SendSerializer(context={"request": request, "sendable_accounts": accounts})
        for index, item in enumerate(items):
            if not isinstance(item, dict):  # DRF would say "This field may not be null." of a null item
                results[index] = _refused({"detail": [_("Each item is one message: a JSON object like a single "
                                                        "send's.")]})
                continue
            try:
                valid.append((index, send_arguments(form.run_validation(item), request.user)))
            except ValidationError as exc:
                results[index] = _refused(exc.detail)
        queued = queue_many([{**arguments, "user": request.user, "sendable": accounts} for _index, arguments in valid])
        for (index, _arguments), outcome in zip(valid, queued, strict=True):
            if isinstance(outcome, SendRefused):
                results[index] = _refused({outcome.field or "detail": [str(outcome)]})
            else:
                results[index] = {"status": "queued", **sent(outcome)}
        return Response(results)
