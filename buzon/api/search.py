"""/api/v1/search/: full-text search of the conversations the caller may see (buzon.workspace.searching,
the same as the inbox's ``?q=``): best match first, each with the matched message's snippet."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buzon.api.conversations import ConversationSerializer
from buzon.messages.conversations import ConversationStatus
from buzon.workspace import reads, searching

MAX_LIMIT = 100

MATCH = inline_serializer("SearchMatch", {
    "source": serializers.CharField(help_text="what matched: message"),
    "id": serializers.IntegerField(help_text="the message's id"),
    "field": serializers.CharField(help_text="the field the snippet is cut from: body, subject, attachments, "
                                             "sender or customer"),
    "score": serializers.FloatField(help_text="higher is a better match (comparable within one search)"),
    "snippet_html": serializers.CharField(help_text="the text around the matched words, HTML-escaped, "
                                                    "the words in <mark>"),
})


class SearchResultSerializer(ConversationSerializer):
    match = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "match"]

    @extend_schema_field(MATCH)
    def get_match(self, row: Any) -> dict[str, Any]:
        result = row.search
        return {"source": result.source, "id": result.id, "field": result.field, "score": result.score,
                "snippet_html": result.snippet}


PAGE = inline_serializer("SearchPage", {
    "results": SearchResultSerializer(many=True), "next": serializers.CharField(allow_null=True)})


class SearchView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="search", parameters=[
        OpenApiParameter("q", OpenApiTypes.STR, required=True,
                         description='words (all must match, accents optional), "a phrase", start* (a prefix)'),
        OpenApiParameter("cursor", OpenApiTypes.STR, description="the `next` cursor of the previous page"),
        OpenApiParameter("limit", OpenApiTypes.INT, description=f"results a page (1-{MAX_LIMIT}, default 50)"),
        OpenApiParameter("view", OpenApiTypes.STR, enum=list(reads.VIEWS)),
        OpenApiParameter("store", OpenApiTypes.INT), OpenApiParameter("status", OpenApiTypes.STR,
                                                                      enum=ConversationStatus.values),
        OpenApiParameter("account", OpenApiTypes.INT), OpenApiParameter("agent", OpenApiTypes.INT),
        OpenApiParameter("customer", OpenApiTypes.INT),
    ], responses={200: PAGE})
    def get(self, request: Request) -> Response:
        """Conversations the caller may see whose mail matches ``q``, best match first (cursor pages, no count)."""
        params = request.query_params
        q = params.get("q", "").strip()
        if not q:
            raise ValidationError({"q": ["Type the words to search for."]})
        limit_text = params.get("limit", "") or str(searching.PAGE_SIZE)
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise ValidationError({"limit": [f"A number from 1 to {MAX_LIMIT}."]})
        try:
            found = searching.search_page(request.user, q, {name: params.get(name, "") for name in reads.FILTERS},
                                          cursor=params.get("cursor", ""), size=int(limit_text))
        except reads.BadFilter as bad:
            raise ValidationError({bad.field: [str(bad)]}) from bad
        return Response({"results": SearchResultSerializer(found.rows, many=True).data, "next": found.next})
