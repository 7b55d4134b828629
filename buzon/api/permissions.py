"""API permissions: every rule asks buzon.crm.roles, so the API and the web pages agree.

An API token authenticates as its user, so a token has exactly that user's rights.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from buzon.crm import roles


def _signed_in(request: Request) -> bool:
    user = request.user
    return bool(user and user.is_authenticated and user.is_active)


class IsStaffOrReadOnly(BasePermission):
    """Settings: read by everyone signed in (rows scoped by roles.visible), changed by administrators."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not _signed_in(request):
            return False
        return request.method in SAFE_METHODS or roles.is_admin(request.user)


class ManagesAgents(BasePermission):
    """Agents and agent groups: read by everyone signed in (rows scoped by roles.visible); created and
    deleted by administrators; changed by administrators and by supervisors, whose changes the
    viewset limits to their stores' agents (status, groups) and groups (members)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not _signed_in(request):
            return False
        if request.method in SAFE_METHODS:
            return True
        if getattr(view, "action", "") in ("update", "partial_update"):
            return roles.can_manage_any_agents(request.user)
        return roles.is_admin(request.user)


class AdminOnly(BasePermission):
    """Installation settings (DKIM keys...): administrators only, even to read."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return _signed_in(request) and roles.is_admin(request.user)


def _store_given(request: Request) -> tuple[bool, int | None]:
    data = request.data if hasattr(request.data, "get") else {}
    if "store" not in data:
        return False, None
    value = data.get("store")
    return True, int(str(value)) if str(value).isdigit() else None


class ManagesAccounts(BasePermission):
    """Email accounts: administrators, and supervisors for their own stores' accounts only."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not _signed_in(request):
            return False
        if request.method in SAFE_METHODS:
            return True
        if not roles.can_manage_any_accounts(request.user):
            return False
        given, store = _store_given(request)
        if getattr(view, "action", "") in ("create", "test_new"):
            return roles.can_manage_accounts(request.user, store)
        return not given or roles.can_manage_accounts(request.user, store)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return request.method in SAFE_METHODS or roles.can_manage_accounts(request.user, obj.store_id)


class VisibleRowsMixin:
    """A viewset whose rows are cut to what the requesting user may see (roles.visible).

    Done in filter_queryset(), which DRF runs for lists and for get_object(), so viewsets that
    build their own get_queryset() are scoped too.
    """

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = super().filter_queryset(queryset)  # type: ignore[misc]
        return roles.visible(queryset, self.request.user)  # type: ignore[attr-defined]

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        """On writes, related rows (store, customer, agent...) may only be ones the user can see.

        Otherwise an agent could file a ticket under another store's customer, or move a record
        into a store they do not work for.
        """
        serializer = super().get_serializer(*args, **kwargs)  # type: ignore[misc]
        request = self.request  # type: ignore[attr-defined]
        if request.method in SAFE_METHODS or not hasattr(serializer, "fields") or roles.is_admin(request.user):
            return serializer
        for field in serializer.fields.values():
            related = getattr(field, "child_relation", field)
            queryset = getattr(related, "queryset", None)
            if queryset is not None and roles.is_scoped(queryset.model):
                related.queryset = roles.visible(queryset, request.user)
        return serializer
