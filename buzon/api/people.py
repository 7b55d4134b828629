"""/api/v1/users/: people — create (invited), read, change, deactivate, reactivate, invite again.

The same functions as the web pages (buzon.crm.people) decide and do everything: administrators
manage everyone; a supervisor the agents who work only in stores they supervise (anyone else is a
404, like a missing one). There is no DELETE: deactivating keeps a person's history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from buzon.api.fields import IdField
from buzon.core import public_url
from buzon.core.models import UserPreferences
from buzon.crm import people, roles
from buzon.crm.models import Agent, AgentGroup, Store
from buzon.outbound import invitations as invitation_mail

T = TypeVar("T")


class ManagesPeople(BasePermission):
    """Administrators, and supervisors of at least one store (the rows are cut to their reach)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and roles.can_manage_any_agents(user))


def guarded(call: Callable[[], T]) -> T:
    """people.NotFound is a 404; people.Invalid a 400 naming each field ("" is the whole request)."""
    try:
        return call()
    except people.NotFound as missing:
        raise exceptions.NotFound() from missing
    except people.Invalid as invalid:
        raise exceptions.ValidationError(
            {name or "non_field_errors": texts for name, texts in invalid.errors.items()}) from invalid


class UserSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(max_length=150, help_text="What they sign in with.")
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True,
                                   help_text="The invitation and notifications are sent here.")
    language = serializers.ChoiceField(choices=[("", "the site's"), *settings.LANGUAGES], required=False,
                                       allow_blank=True, help_text="Of their pages, notifications and invitation.")
    stores = IdField(many=True, queryset=Store.objects.all(), required=False)
    groups = IdField(many=True, queryset=AgentGroup.objects.all(), required=False,
                                                help_text="Agent groups (new customers are spread across them).")
    is_supervisor = serializers.BooleanField(required=False)
    is_admin = serializers.BooleanField(required=False, help_text="Only administrators set it.")
    is_active = serializers.BooleanField(read_only=True, help_text="False once deactivated.")
    password_pending = serializers.BooleanField(read_only=True,
                                                help_text="Invited, and has not chosen a password yet.")
    agent = serializers.IntegerField(read_only=True, allow_null=True, help_text="Their id at /api/v1/agents/.")
    status = serializers.CharField(read_only=True, help_text="The agent's status (free, lunch, busy, break, offline).")
    last_login = serializers.DateTimeField(read_only=True, allow_null=True)

    def to_representation(self, user: Any) -> dict[str, Any]:
        # Read through the relations (a list prefetches them: UserViewSet.get_queryset), no query per row.
        agent = getattr(user, "agent", None)
        prefs = getattr(user, "preferences", None)
        return {
            "id": user.pk, "username": user.username, "first_name": user.first_name, "last_name": user.last_name,
            "email": user.email, "language": prefs.language if prefs else "",
            "stores": sorted(s.pk for s in agent.stores.all()) if agent else [],
            "groups": sorted(g.pk for g in agent.groups.all()) if agent else [],
            "is_supervisor": any(g.name == roles.SUPERVISOR_GROUP for g in user.groups.all()),
            "is_admin": user.is_staff,
            "is_active": user.is_active, "password_pending": bool(prefs and prefs.must_set_password),
            "agent": agent.pk if agent else None, "status": agent.status if agent else "",
            "last_login": serializers.DateTimeField().to_representation(user.last_login) if user.last_login else None,
        }


class InvitedUserSerializer(UserSerializer):
    invitation_url = serializers.CharField(read_only=True, help_text="Their link to choose a password: shown once.")
    invitation_not_mailed = serializers.CharField(
        read_only=True, help_text="Why the invitation was not emailed; empty when it was.")


def _person_data(user: Any | None, given: dict[str, Any]) -> people.PersonData:
    """What ``user`` has now (nothing for a new one), with the fields ``given`` replaced."""
    now: dict[str, Any] = {}
    if user is not None:
        agent = Agent.objects.filter(user_id=user.pk).first()
        prefs = UserPreferences.objects.filter(user_id=user.pk).first()
        now = {"username": user.username, "first_name": user.first_name, "last_name": user.last_name,
               "email": user.email, "language": prefs.language if prefs else "",
               "stores": list(agent.stores.all()) if agent else [], "groups": list(agent.groups.all()) if agent else [],
               "is_supervisor": user.groups.filter(name=roles.SUPERVISOR_GROUP).exists(), "is_admin": user.is_staff}
    values = {**now, **given}
    return people.PersonData(
        username=values.get("username", ""), first_name=values.get("first_name", ""),
        last_name=values.get("last_name", ""), email=values.get("email", ""), language=values.get("language", ""),
        stores=list(values.get("stores", [])), groups=list(values.get("groups", [])),
        supervisor=bool(values.get("is_supervisor", False)), admin=bool(values.get("is_admin", False)))


def _fresh(user: Any) -> Any:
    """``user`` as stored now, with what the serializer reads (after a change, nothing cached is stale)."""
    return (type(user).objects.select_related("agent", "preferences")
            .prefetch_related("agent__stores", "agent__groups", "groups").get(pk=user.pk))


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                  mixins.UpdateModelMixin, viewsets.GenericViewSet[Any]):
    """People. Create one to invite them (the answer carries their link, `invitation_url`, once; it is
    also emailed in their language through the default outgoing account). No DELETE: deactivate."""

    serializer_class = UserSerializer
    permission_classes = [ManagesPeople]

    def get_queryset(self) -> Any:
        return (people.people_of(self.request.user).select_related("agent", "preferences")
                .prefetch_related("agent__stores", "agent__groups", "groups").order_by("username"))

    def get_object(self) -> Any:
        return guarded(lambda: people.person(self.request.user, self.kwargs.get("pk", "")))

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        serializer = super().get_serializer(*args, **kwargs)
        if hasattr(serializer, "fields"):  # another store's or group's id answers like a missing one
            serializer.fields["stores"].child_relation.queryset = people.stores_for(self.request.user)
            serializer.fields["groups"].child_relation.queryset = people.groups_for(self.request.user)
        return serializer

    def _invited(self, user: Any, link: str, code: int) -> Response:
        body = dict(UserSerializer(_fresh(user)).data)
        body["invitation_url"] = public_url.absolute(link)
        body["invitation_not_mailed"] = invitation_mail.mail(user, link, self.request.user)
        return Response(body, status=code)

    @extend_schema(responses={201: InvitedUserSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        given = self.get_serializer(data=request.data)
        given.is_valid(raise_exception=True)
        user, link = guarded(lambda: people.create_person(request.user, _person_data(None, given.validated_data)))
        return self._invited(user, link, status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user = self.get_object()
        given = self.get_serializer(user, data=request.data, partial=kwargs.get("partial", False))
        given.is_valid(raise_exception=True)
        guarded(lambda: people.update_person(request.user, user, _person_data(user, given.validated_data)))
        return Response(UserSerializer(_fresh(user)).data)

    @extend_schema(request=None, responses={200: UserSerializer})
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        """Signs them out everywhere, revokes their API tokens; new customers go to others."""
        user = self.get_object()
        guarded(lambda: people.deactivate(request.user, user))
        return Response(UserSerializer(_fresh(user)).data)

    @extend_schema(request=None, responses={200: UserSerializer})
    @action(detail=True, methods=["post"])
    def reactivate(self, request: Request, pk: str | None = None) -> Response:
        user = self.get_object()
        guarded(lambda: people.reactivate(request.user, user))
        return Response(UserSerializer(_fresh(user)).data)

    @extend_schema(request=None, responses={200: InvitedUserSerializer})
    @action(detail=True, methods=["post"])
    def invitation(self, request: Request, pk: str | None = None) -> Response:
        """A new invitation link: their password and older links stop working, they are signed out."""
        user = self.get_object()
        link = guarded(lambda: people.new_invitation(request.user, user))
        return self._invited(user, link, status.HTTP_200_OK)

