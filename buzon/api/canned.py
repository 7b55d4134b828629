"""/api/v1/canned-responses/: the caller's canned responses (their own and those shared with their
stores), and creating, changing and deleting them by the rules of buzon.workspace.canned: one seen
by nobody else but its owner, or shared with another store, is a 404 as a missing one; one seen but
not the caller's to change (a shared one, for an agent) is a 403; nothing changes either way."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buzon.api.fields import ModelSerializer
from buzon.workspace import canned
from buzon.workspace.actions import ActionRefused
from buzon.workspace.history import person
from buzon.workspace.models import CannedResponse


class CannedResponseSerializer(ModelSerializer[CannedResponse]):
    owner_name = serializers.SerializerMethodField()
    store_name = serializers.SerializerMethodField()
    editable = serializers.SerializerMethodField()

    class Meta:
        model = CannedResponse
        fields = ["id", "shortcut", "title", "text", "store", "store_name", "owner", "owner_name", "editable",
                  "created_at", "updated_at"]
        read_only_fields = fields

    def get_owner_name(self, row: CannedResponse) -> str:
        return person(row.owner)

    def get_store_name(self, row: CannedResponse) -> str:
        return row.store.name if row.store is not None else ""

    def get_editable(self, row: CannedResponse) -> bool:
        return canned.may_change(self.context["request"].user, row)


class CannedResponseInput(serializers.Serializer[Any]):
    shortcut = serializers.CharField(max_length=41, help_text='typed after "/" in the Reply box')
    title = serializers.CharField(max_length=200)
    text = serializers.CharField()
    store = serializers.IntegerField(required=False, allow_null=True, default=None,
                                     help_text="share with this store (its supervisors and administrators)")


def _refused(refused: ActionRefused) -> ValidationError:
    return ValidationError({refused.field or "detail": [refused.message]})


def _reached(call: Any) -> Any:
    try:
        return call()
    except Http404:
        raise NotFound() from None
    except DjangoPermissionDenied as denied:
        raise PermissionDenied(str(denied)) from None
    except ActionRefused as refused:
        raise _refused(refused) from refused


class CannedResponseListView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="canned_responses_list", parameters=[
        OpenApiParameter("store", OpenApiTypes.INT, description="only your own and those shared with this store"),
        OpenApiParameter("after", OpenApiTypes.STR, description="the `next` cursor of the previous page"),
    ], responses={200: inline_serializer("CannedResponsePage", {
        "results": CannedResponseSerializer(many=True), "next": serializers.CharField(allow_null=True)})})
    def get(self, request: Request) -> Response:
        """Your canned responses and those shared with your stores, by shortcut, 100 a page."""
        rows, after = _reached(lambda: canned.page(request.user, store=request.query_params.get("store", ""),
                                                   after=request.query_params.get("after", "")))
        return Response({"results": CannedResponseSerializer(rows, many=True, context={"request": request}).data,
                         "next": after or None})

    @extend_schema(operation_id="canned_responses_create", request=CannedResponseInput,
                   responses={201: CannedResponseSerializer})
    def post(self, request: Request) -> Response:
        """A new canned response: your own, or shared with a store you supervise (``store``)."""
        form = CannedResponseInput(data=request.data)
        form.is_valid(raise_exception=True)
        row = _reached(lambda: canned.do_create_canned(request.user, **form.validated_data))
        return Response(CannedResponseSerializer(row, context={"request": request}).data,
                        status=status.HTTP_201_CREATED)


class CannedResponseDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="canned_responses_retrieve", responses={200: CannedResponseSerializer})
    def get(self, request: Request, pk: int) -> Response:
        row = _reached(lambda: canned.access_canned(request.user, pk))
        return Response(CannedResponseSerializer(row, context={"request": request}).data)

    def _change(self, request: Request, pk: int, *, partial: bool) -> Response:
        current = _reached(lambda: canned.access_canned(request.user, pk, to_change=True))
        form = CannedResponseInput(data=request.data, partial=partial)
        form.is_valid(raise_exception=True)
        data = {"shortcut": current.shortcut, "title": current.title, "text": current.text,
                "store": current.store_id}
        data.update({k: v for k, v in form.validated_data.items() if k in request.data or not partial})
        row = _reached(lambda: canned.do_update_canned(request.user, pk, **data))
        return Response(CannedResponseSerializer(row, context={"request": request}).data)

    @extend_schema(operation_id="canned_responses_update", request=CannedResponseInput,
                   responses={200: CannedResponseSerializer})
    def put(self, request: Request, pk: int) -> Response:
        """Change a canned response you may change (your own; a shared one, as its store's supervisor)."""
        return self._change(request, pk, partial=False)

    @extend_schema(operation_id="canned_responses_partial_update", request=CannedResponseInput,
                   responses={200: CannedResponseSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        """Change some fields of a canned response you may change."""
        return self._change(request, pk, partial=True)

    @extend_schema(operation_id="canned_responses_destroy", responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        """Delete a canned response you may change."""
        _reached(lambda: canned.do_delete_canned(request.user, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
