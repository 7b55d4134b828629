"""/api/v1/conversations/: the list (same filters and cursor pages as the web inbox), one
conversation with its messages, and the actions reply, status, assign (buzon.workspace.actions),
merge and move out (buzon.workspace.merging): the same functions the web UI calls.
An invisible conversation is a 404, as a missing one."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buzon.api.fields import ModelSerializer
from buzon.messages.conversations import Conversation, ConversationStatus
from buzon.messages.models import Message
from buzon.workspace import actions, bulk, forwarding, merging, reads
from buzon.workspace.access import access_conversation


class ConversationSerializer(ModelSerializer[Conversation]):
    customer_name = serializers.SerializerMethodField()
    agent_name = serializers.SerializerMethodField()
    unread = serializers.SerializerMethodField()
    record = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = ["id", "subject", "customer", "customer_name", "snippet", "message_count", "store", "account",
                  "agent", "agent_name", "status", "unread", "last_message_at", "last_incoming_at", "record",
                  "merged_into", "created_at"]

    def get_customer_name(self, row: Conversation) -> str:
        return reads.customer_label(row) if hasattr(row, "customer_email") else str(row.customer or "")

    def get_agent_name(self, row: Conversation) -> str:
        return str(row.agent) if row.agent is not None else ""

    def get_unread(self, row: Conversation) -> bool:
        return bool(getattr(row, "unread", False))

    def get_record(self, row: Conversation) -> dict[str, Any] | None:
        if not row.record_id or not row.record_type_id:
            return None
        kind = ContentType.objects.get_for_id(row.record_type_id)  # the process's cache: no query per row
        return {"type": kind.model, "id": row.record_id}


class ThreadMessageSerializer(ModelSerializer[Message]):
    class Meta:
        model = Message
        fields = ["id", "direction", "from_address", "from_name", "to", "cc", "subject", "date", "created_at",
                  "status", "message_id", "in_reply_to", "text"]


class ConversationDetailSerializer(ConversationSerializer):
    messages = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "messages"]

    def get_messages(self, row: Conversation) -> list[dict[str, Any]]:
        thread = Message.objects.filter(conversation_id=row.pk).order_by("created_at", "id")[:500]
        return ThreadMessageSerializer(thread, many=True).data  # type: ignore[return-value]


def _access(request: Request, pk: int) -> Conversation:
    try:
        return access_conversation(request.user, pk)
    except Http404:
        raise NotFound() from None


def _field(request: Request, name: str) -> Any:
    data = request.data
    return data.get(name) if not isinstance(data, list) else None


def _refused(refused: actions.ActionRefused) -> ValidationError:
    return ValidationError({refused.field or "detail": [refused.message]})


PAGE = inline_serializer("ConversationPage", {
    "results": ConversationSerializer(many=True), "newer": serializers.CharField(allow_null=True),
    "older": serializers.CharField(allow_null=True)})


class ConversationListView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="conversations_list", parameters=[
        OpenApiParameter("view", OpenApiTypes.STR, enum=list(reads.VIEWS),
                         description="mine (assigned to me), unassigned, stores (my stores' mail) or all"),
        OpenApiParameter("store", OpenApiTypes.INT), OpenApiParameter("status", OpenApiTypes.STR,
                                                                      enum=ConversationStatus.values),
        OpenApiParameter("account", OpenApiTypes.INT, description="the email account it came through"),
        OpenApiParameter("agent", OpenApiTypes.INT), OpenApiParameter("customer", OpenApiTypes.INT),
        OpenApiParameter("before", OpenApiTypes.STR, description="the `older` cursor of the previous page"),
        OpenApiParameter("after", OpenApiTypes.STR, description="the `newer` cursor of the previous page"),
    ], responses={200: PAGE})
    def get(self, request: Request) -> Response:
        """Conversations the caller may see, newest activity first, 50 a page (cursor pages, no count)."""
        params = request.query_params
        try:
            found = reads.page(request.user, {name: params.get(name, "") for name in reads.FILTERS},
                               before=params.get("before", ""), after=params.get("after", ""))
        except reads.BadFilter as bad:
            raise ValidationError({bad.field: [str(bad)]}) from bad
        return Response({"results": ConversationSerializer(found.rows, many=True).data,
                         "newer": str(found.newer) if found.newer else None,
                         "older": str(found.older) if found.older else None})


class ConversationDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="conversations_retrieve", responses={200: ConversationDetailSerializer})
    def get(self, request: Request, pk: int) -> Response:
        """One conversation with its messages in order (received and sent)."""
        return Response(ConversationDetailSerializer(_access(request, pk)).data)


class ReplySerializer(serializers.Serializer[Any]):
    text = serializers.CharField()
    html = serializers.CharField(required=False, allow_blank=True, default="")
    reply_all = serializers.BooleanField(
        required=False, default=False, help_text="Cc the answered mail's other recipients (not Buzón's own mailboxes)")


class ForwardSerializer(serializers.Serializer[Any]):
    to = serializers.ListField(child=serializers.EmailField(), min_length=1)
    text = serializers.CharField(required=False, allow_blank=True, default="")
    message = serializers.IntegerField(
        required=False, allow_null=True, default=None,
        help_text="the message of this conversation to forward (default: the customer's latest)")


class ConversationReplyView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=ReplySerializer, responses={202: ThreadMessageSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Reply in the conversation: In-Reply-To the customer's latest mail, through the account today's
        rules choose; the conversation becomes pending. 400 says why a reply cannot be sent."""
        _access(request, pk)
        form = ReplySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            message = actions.do_reply(request.user, pk, **form.validated_data)
        except actions.ActionRefused as refused:
            raise _refused(refused) from refused
        return Response(ThreadMessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)


class ConversationStatusView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=inline_serializer("ConversationStatusChange", {
        "status": serializers.ChoiceField(ConversationStatus.choices),
        "seen_incoming_at": serializers.DateTimeField(required=False, allow_null=True)}),
        responses={200: ConversationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Set the conversation's status: open, pending or closed. With ``seen_incoming_at`` (the
        ``last_incoming_at`` you read), closing or pending is refused (400) when newer customer mail
        arrived since: it stays open."""
        _access(request, pk)
        try:
            conversation = actions.do_set_status(request.user, pk, str(_field(request, "status") or ""),
                                                 seen_incoming_at=_field(request, "seen_incoming_at"))
        except actions.ActionRefused as refused:
            raise _refused(refused) from refused
        return Response(ConversationSerializer(conversation).data)


class ConversationAssignView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=inline_serializer("ConversationAssignment", {
        "agent": serializers.IntegerField(allow_null=True)}), responses={200: ConversationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Give the conversation to an agent of its store (``agent``: their id), or to no one (null)."""
        _access(request, pk)
        agent = _field(request, "agent")
        try:
            conversation = actions.do_assign(request.user, pk, "" if agent is None else str(agent))
        except actions.ActionRefused as refused:
            raise _refused(refused) from refused
        return Response(ConversationSerializer(conversation).data)


class ConversationMergeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=inline_serializer("ConversationMerge", {"other": serializers.IntegerField()}),
                   responses={200: ConversationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Merge conversation ``other`` into this one (same store): its messages, notes and history
        join this one, and ``other`` answers with ``merged_into`` set from then on."""
        _access(request, pk)
        try:
            conversation = merging.do_merge(request.user, pk, str(_field(request, "other") or ""))
        except actions.ActionRefused as refused:
            raise _refused(refused) from refused
        return Response(ConversationSerializer(conversation).data)


class ConversationMoveOutView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=inline_serializer("ConversationMoveOut", {"message": serializers.IntegerField()}),
                   responses={201: ConversationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Move ``message`` (one of this conversation's) out into a new conversation; answers the new one."""
        _access(request, pk)
        try:
            new = merging.do_move_out(request.user, pk, str(_field(request, "message") or ""))
        except actions.ActionRefused as refused:
            raise _refused(refused) from refused
        return Response(ConversationSerializer(new).data, status=status.HTTP_201_CREATED)


class ConversationForwardView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=ForwardSerializer, responses={202: ThreadMessageSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Forward a message of the conversation (with its attachments) to ``to``; the forward joins the
        conversation and its answer comes back there. The status does not change."""
        _access(request, pk)
        form = ForwardSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            message = forwarding.do_forward(request.user, pk, to=data["to"], text=data["text"],
                                            message_id=data["message"])
        except actions.ActionRefused as refused:
            raise _refused(refused) from refused
        return Response(ThreadMessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)


class BulkSerializer(serializers.Serializer[Any]):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), allow_empty=False,
                                max_length=bulk.MAX_IDS)
    action = serializers.ChoiceField(bulk.ACTIONS)
    agent = serializers.IntegerField(required=False, allow_null=True, help_text="assign: the agent's id (null: no one)")
    status = serializers.ChoiceField(ConversationStatus.choices, required=False, help_text="status: the new status")
    seen_incoming_at = serializers.DictField(child=serializers.CharField(), required=False,
                                             help_text="status: per id, the customer's latest mail you read "
                                                       "(`last_incoming_at`, as for one conversation)")


BULK_RESULTS = inline_serializer("ConversationBulkResults", {"results": inline_serializer("ConversationBulkResult", {
    "id": serializers.IntegerField(), "result": serializers.ChoiceField([bulk.DONE, bulk.MISSING, bulk.REFUSED]),
    "message": serializers.CharField()}, many=True)})


class ConversationBulkView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="conversations_bulk", request=BulkSerializer, responses={200: BULK_RESULTS})
    def post(self, request: Request) -> Response:
        """One action on many conversations (assign, status, read, unread), each through the same action
        as for one: per id, ``done``, ``refused`` (with the reason) or ``missing`` (no such conversation
        for you; nothing happened to it)."""
        form = BulkSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        seen = {int(k): v for k, v in data.get("seen_incoming_at", {}).items() if str(k).isdigit()}
        try:
            outcomes = bulk.do_bulk(request.user, data["ids"], data["action"], agent=data.get("agent"),
                                    status=data.get("status", ""), seen_incoming_at=seen)
        except actions.ActionRefused as refused:
            raise _refused(refused) from refused
        return Response({"results": [{"id": o.id, "result": o.result, "message": o.message} for o in outcomes]})
