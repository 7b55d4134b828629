"""/api/v1/conversations/{id}/notes/: a conversation's internal notes (never mailed), and adding one
(buzon.workspace.actions.do_add_note, as the web page does). An invisible conversation is a 404, as
a missing one, and nothing is written."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buzon.api.fields import ModelSerializer
from buzon.workspace import actions
from buzon.workspace.access import access_conversation
from buzon.workspace.history import person
from buzon.workspace.models import ConversationNote

#: The notes a conversation answers with, oldest first (the page shows the same).
MAX_NOTES = 500


class NoteSerializer(ModelSerializer[ConversationNote]):
    author_name = serializers.SerializerMethodField()

    class Meta:
        model = ConversationNote
        fields = ["id", "conversation", "author", "author_name", "text", "created_at"]
        read_only_fields = fields

    def get_author_name(self, row: ConversationNote) -> str:
        return person(row.author)


class NewNoteSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(max_length=actions.NOTE_MAX_LENGTH,
                                 help_text='"@username" tells that colleague, if they may see the conversation')


class ConversationNotesView(APIView):
    permission_classes = [IsAuthenticated]

    def _access(self, request: Request, pk: int) -> None:
        try:
            access_conversation(request.user, pk)
        except Http404:
            raise NotFound() from None

    @extend_schema(operation_id="conversations_notes_list", responses={200: NoteSerializer(many=True)})
    def get(self, request: Request, pk: int) -> Response:
        """The conversation's internal notes, oldest first (at most 500)."""
        self._access(request, pk)
        notes = ConversationNote.objects.filter(conversation_id=pk).select_related("author")
        return Response(NoteSerializer(notes.order_by("created_at", "id")[:MAX_NOTES], many=True).data)

    @extend_schema(operation_id="conversations_notes_create", request=NewNoteSerializer,
                   responses={201: NoteSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Add an internal note: never mailed, seen by everyone who may see the conversation. Each
        "@username" it names who may see the conversation is told through the bell; the answer is the
        same whoever is named."""
        self._access(request, pk)
        form = NewNoteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            note = actions.do_add_note(request.user, pk, form.validated_data["text"])
        except actions.ActionRefused as refused:
            raise ValidationError({refused.field or "detail": [refused.message]}) from refused
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)
