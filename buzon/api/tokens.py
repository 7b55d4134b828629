"""/api/v1/tokens/: the signed-in user's own API tokens — list, make (shown once), revoke.

Nobody sees or revokes another user's tokens here: another user's token is a 404 like a missing one.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from buzon.core import api_tokens


class ApiTokenSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(source="token_key", read_only=True,
                                help_text="The token's first characters: how lists name it, and its id here.")
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    created = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)


class NewApiTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The token itself. Shown only in this answer.")


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                      viewsets.GenericViewSet[Any]):
    """Your API tokens. Send one as `Authorization: Token <token>`. Changing your password revokes them all."""

    serializer_class = ApiTokenSerializer
    lookup_field = "token_key"
    lookup_url_kwarg = "key"
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Any]:
        return api_tokens.of_user(self.request.user)

    @extend_schema(request=ApiTokenSerializer, responses={201: NewApiTokenSerializer})
    def create(self, request: Request) -> Response:
        """Make a token; the answer carries it (`token`) this once: Buzón keeps only a hash."""
        form = ApiTokenSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        row, token = api_tokens.create(request.user, form.validated_data["name"])
        body = dict(NewApiTokenSerializer(row).data)
        body["token"] = token
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Revoke the token: it stops working at once."""
        row = self.get_object()
        api_tokens.revoke(request.user, row.token_key)
        return Response(status=status.HTTP_204_NO_CONTENT)
