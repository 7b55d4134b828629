"""GET /api/v1/messages/ (?account=ID, ?folder=NAME), /messages/{id}/ and /messages/{id}/raw/.

One table holds received and sent mail (messages.Message); a received one also shows where the
sync engine read it (its RawMessage: folder, size on the server, flags). The detail serializer
extends the list one, so other contexts add their fields by subclassing `MessageDetailSerializer`.
"""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

from buzon.api.fields import ModelSerializer
from buzon.crm import roles
from buzon.messages.models import Message
from buzon.sync import truncate


def shown_address(name: str, address: str) -> str:
    """"Name <address>" as a mail client shows it: the name as written, quoted where a header would
    quote it (a comma, a quote), never in its RFC 2047 form ("=?utf-8?q?...?="), which is for the
    wire: mail Buzón sent has no raw headers to show, and its name is often not ASCII ("vía")."""
    try:
        return str(Address(display_name=name, addr_spec=address))
    except (ValueError, IndexError, HeaderParseError):  # an address the parser does not take as written
        return f"{name} <{address}>" if name else address


class MessageSerializer(ModelSerializer[Message]):
    folder = serializers.SerializerMethodField()
    size = serializers.SerializerMethodField()
    flags = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "account", "direction", "folder", "to", "subject", "date", "message_id", "size", "flags",
                  "status", "customer"]

    def get_fields(self) -> dict[str, Any]:
        # "from" is a Python keyword, so it cannot be declared as a class attribute: add it here,
        # just before "to".
        fields: dict[str, Any] = {}
        for name, field in super().get_fields().items():
            if name == "to":
                fields["from"] = serializers.SerializerMethodField(method_name="get_from")
            fields[name] = field
        return fields

    def get_from(self, message: Message) -> str:
        if message.raw is not None and message.raw.from_header:
            return message.raw.from_header
        return shown_address(message.from_name, message.from_address) if message.from_address else ""

    def get_folder(self, message: Message) -> str:
        return message.raw.folder if message.raw is not None else ""

    def get_size(self, message: Message) -> int | None:
        return message.raw.size if message.raw is not None else None

    def get_flags(self, message: Message) -> list[str]:
        return list(message.raw.flags) if message.raw is not None else []


class MessageDetailSerializer(MessageSerializer):
    truncated = serializers.SerializerMethodField()
    truncation_note = serializers.SerializerMethodField(help_text="In the reader's language.")
    left_out = serializers.SerializerMethodField(
        help_text="The attachments the account's attachment limit left out: name, type, size in bytes.")
    pipeline = serializers.SerializerMethodField(
        help_text="What the inbound pipeline decided and why: steps, record, customer, agent, classification.")

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "cc", "reply_to", "in_reply_to", "status_reason",
                  "truncated", "truncation_note", "left_out", "text", "html", "created_at", "pipeline"]

    def get_truncated(self, message: Message) -> bool:
        return bool(message.raw and message.raw.truncated)

    def get_truncation_note(self, message: Message) -> str:
        return truncate.describe(message.raw.truncation_note) if message.raw is not None else ""

    def get_left_out(self, message: Message) -> list[dict[str, Any]]:
        return truncate.left_out_of(message.raw.truncation_note) if message.raw is not None else []

    def get_pipeline(self, message: Message) -> dict[str, Any]:
        from buzon.api.crm import pipeline_summary

        return pipeline_summary(message)


#: What a message list never reads: the bodies, the decisions, raw header copies (the raw bytes are in RawContent).
LIST_LEAVES_OUT = ("text", "html", "decisions", "references", "raw__to_header", "raw__subject")


@extend_schema(parameters=[
    OpenApiParameter("account", OpenApiTypes.INT, description="only this email account's messages"),
    OpenApiParameter("folder", OpenApiTypes.STR, description="only messages read from this folder"),
])
class MessageViewSet(viewsets.ReadOnlyModelViewSet[Message]):
    serializer_class = MessageSerializer

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Message]]:
        return MessageDetailSerializer if self.action == "retrieve" else MessageSerializer

    def get_queryset(self) -> QuerySet[Message]:
        # A message deleted in Buzón keeps its raw row as a tombstone; it is not listed.
        queryset = roles.visible(Message.objects.select_related("raw"), self.request.user)
        queryset = queryset.filter(Q(raw__isnull=True) | Q(raw__deleted_at__isnull=True))
        if self.action != "list":
            return queryset
        # The list reads what it shows: not the raw mail, nor the bodies and decisions the detail shows.
        queryset = queryset.defer(*LIST_LEAVES_OUT)
        account = self.request.query_params.get("account")
        if account is not None:
            if not account.isdigit():
                raise ValidationError({"account": _("Give the email account's id, a whole number.")})
            queryset = queryset.filter(account_id=int(account))
        folder = self.request.query_params.get("folder")
        if folder is not None:
            queryset = queryset.filter(raw__folder=folder)
        return queryset

    @extend_schema(responses={(200, "message/rfc822"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def raw(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The exact bytes the server gave, as an .eml download (never rendered by a browser)."""
        message = get_object_or_404(self.get_queryset(), pk=pk)
        if message.raw is None:
            raise NotFound(_("This message has no raw copy: it was written in Buzón, not received."))
        response = HttpResponse(bytes(message.raw.data), content_type="message/rfc822")
        response["Content-Disposition"] = f'attachment; filename="message-{message.pk}.eml"'
        response["X-Content-Type-Options"] = "nosniff"
        return response
