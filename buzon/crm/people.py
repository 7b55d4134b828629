"""People: the one place that creates, changes and deactivates users and agents (web UI and API alike).

Who may do what comes from buzon.crm.roles: administrators manage everyone; a supervisor manages the
agents who work only in stores they supervise (never an administrator), gives them only those
stores and those stores' agent groups, and never makes anyone an administrator. A person outside
the actor's reach is ``NotFound`` (the faces answer 404, like a missing one); a value the actor may
not give is an ``Invalid`` naming the field.

Every change is sent as ``changed`` (target "user", the person's id and username, the fields' old
and new values), which buzon.mailboxes.audit writes to the audit log; an agent changing their own
status is not a settings change and is not logged. New people get their first password through an
invitation (buzon.core.invitations); mailing it is the faces' next call (buzon.outbound.invitations).
Deactivating keeps the user row and all they did, signs them out everywhere, revokes their API
tokens and hands their customers and open tickets back to the assignment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import Signal
from django.utils.translation import gettext as _

from buzon.core import api_tokens, invitations
from buzon.core.language import language_of, supported
from buzon.core.models import UserPreferences
from buzon.crm import presence, roles
from buzon.crm.models import Agent, AgentGroup, Customer, Store, Ticket

#: Sent after each change: target ("user" or "group"), target_id, label, action, changes, actor.
changed = Signal()


class NotFound(Exception):
    """The person or group is outside the actor's reach (answered like one that does not exist)."""


class Invalid(Exception):
    """Values that cannot be saved: ``errors`` maps a field name ("" for the whole) to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(m for messages in errors.values() for m in messages))
        self.errors = errors


@dataclass
class PersonData:
    username: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    language: str = ""
    stores: list[Store] = field(default_factory=list)
    groups: list[AgentGroup] = field(default_factory=list)
    supervisor: bool = False
    admin: bool = False


def audit(actor: Any, target: str, obj: Any, action: str, changes: list[dict[str, Any]]) -> None:
    changed.send(sender=__name__, actor=actor, target=target, target_id=obj.pk, label=str(obj)[:300],
                 action=action, changes=changes)


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"field": name, "old": before.get(name), "new": value}
            for name, value in after.items() if before.get(name) != value]


# --- what the actor reaches ---------------------------------------------------------------------

def people_of(actor: Any) -> QuerySet[Any]:
    """The users ``actor`` manages: every one (administrators), or their stores' agents (supervisors)."""
    users = get_user_model().objects.all()
    if roles.is_admin(actor):
        return users
    return users.filter(agent__in=roles.managed_agents(actor)).distinct()


def person(actor: Any, pk: Any) -> Any:
    found = people_of(actor).filter(pk=pk).first() if str(pk).isdigit() else None
    if found is None:
        raise NotFound
    return found


def stores_for(actor: Any) -> QuerySet[Store]:
    """The stores ``actor`` may give people."""
    if roles.is_admin(actor):
        return Store.objects.all()
    return Store.objects.filter(pk__in=roles.supervised_store_ids(actor))


def groups_for(actor: Any) -> QuerySet[AgentGroup]:
    """The agent groups ``actor`` may put people in (and manage)."""
    return roles.managed_groups(actor).select_related("store")


# --- a person's state, as the audit log and the faces show it ----------------------------------

def snapshot(user: Any) -> dict[str, Any]:
    agent = Agent.objects.filter(user_id=user.pk).first()
    return {
        "username": user.username, "first_name": user.first_name, "last_name": user.last_name,
        "email": user.email, "language": language_of(user), "is_active": user.is_active,
        "is_admin": bool(user.is_staff), "is_supervisor": user.groups.filter(name=roles.SUPERVISOR_GROUP).exists(),
        "stores": sorted(agent.stores.values_list("name", flat=True)) if agent else [],
        "groups": sorted(agent.groups.values_list("name", flat=True)) if agent else [],
        "status": agent.status if agent else "",
    }


def _check(actor: Any, data: PersonData, user: Any | None) -> None:
    errors: dict[str, list[str]] = {}
    model = get_user_model()
    username = data.username.strip()
    try:
        model.username_validator(username)
        if not username:
            raise ValidationError(_("Enter a username."))
    except ValidationError as error:
        errors["username"] = list(error.messages)
    else:
        taken = model.objects.filter(username__iexact=username)
        if user is not None:
            taken = taken.exclude(pk=user.pk)
        if taken.exists():
            errors["username"] = [_("Another person already has this username.")]
    if data.email:
        try:
            validate_email(data.email)
        except ValidationError as error:
            errors["email"] = list(error.messages)
    if data.language and supported(data.language) is None:
        errors["language"] = [_("Choose one of the site's languages.")]
    if not roles.is_admin(actor):
        reach = set(stores_for(actor))
        if not data.stores:
            errors["stores"] = [_("Choose at least one of the stores you supervise.")]
        elif not set(data.stores) <= reach:
            errors["stores"] = [_("You can only give the stores you supervise.")]
        if data.admin or (user is not None and user.is_staff):
            errors["is_admin"] = [_("Only administrators make someone an administrator.")]
    kept = set(AgentGroup.objects.filter(agents__user=user)) if user is not None else set()
    outside = groups_outside(data.groups, {store.pk for store in data.stores}, kept)
    if outside:
        errors["groups"] = outside
    if user is not None and user.pk == actor.pk and user.is_staff and not data.admin:
        errors["is_admin"] = [_("You cannot take away your own administrator rights.")]
    if errors:
        raise Invalid(errors)


def _apply(actor: Any, user: Any, data: PersonData, *, creating: bool = False) -> None:
    """Write ``data`` (already checked) to ``user`` and their Agent row (made for a new person, or once
    they are given a store, a group or the supervisor role: editing an administrator's name does not
    make them an agent)."""
    user.username, user.email = data.username.strip(), data.email.strip()
    user.first_name, user.last_name = data.first_name.strip(), data.last_name.strip()
    if roles.is_admin(actor):
        user.is_staff = user.is_superuser = data.admin
    user.save()
    # Blank: the site's language, whatever it is at the time.
    UserPreferences.objects.update_or_create(user_id=user.pk, defaults={"language": supported(data.language) or ""})
    agent = Agent.objects.filter(user=user).first()
    if agent is None:
        if not (creating or data.stores or data.groups or data.supervisor):
            return
        agent = Agent.objects.create(user=user)
    agent.stores.set(data.stores)  # a supervisor's person works only in their stores (checked)
    changeable = set(groups_for(actor))
    kept = [group for group in agent.groups.all() if group not in changeable]
    agent.groups.set([*kept, *(group for group in data.groups if group in changeable)])
    supervisors, _created = Group.objects.get_or_create(name=roles.SUPERVISOR_GROUP)
    if data.supervisor:
        user.groups.add(supervisors)
    else:
        user.groups.remove(supervisors)


def create_person(actor: Any, data: PersonData) -> tuple[Any, str]:
    """A new user and agent, invited: (the user, their invitation link's path)."""
    _check(actor, data, None)
    with transaction.atomic():
        user = get_user_model().objects.create_user(data.username.strip())
        _apply(actor, user, data, creating=True)
        link = invitations.invite(user)
        audit(actor, "user", user, "created", diff({}, {k: v for k, v in snapshot(user).items()
                                                       if v not in ("", [], False, None)}))
    return user, link


def update_person(actor: Any, user: Any, data: PersonData) -> Any:
    person(actor, user.pk)
    _check(actor, data, user)
    with transaction.atomic():
        before = snapshot(user)
        _apply(actor, user, data)
        changes = diff(before, snapshot(user))
        if changes:
            audit(actor, "user", user, "changed", changes)
    return user


def deactivate(actor: Any, user: Any) -> None:
    """They can no longer sign in or use a token; what they did stays, their customers go to others."""
    person(actor, user.pk)
    if user.pk == actor.pk:
        raise Invalid({"": [_("You cannot deactivate yourself.")]})
    if not user.is_active:
        return
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        presence.sign_out_everywhere(user)
        api_tokens.revoke_all(user)
        agent = Agent.objects.filter(user_id=user.pk).first()
        if agent is not None:
            Agent.objects.filter(pk=agent.pk).update(status=Agent.Status.OFFLINE, online=False)
            Customer.objects.filter(agent=agent).update(agent=None, assigned_at=None)
            Ticket.objects.filter(agent=agent).exclude(status=Ticket.Status.CLOSED).update(agent=None)
        audit(actor, "user", user, "changed", [{"field": "is_active", "old": True, "new": False}])


def reactivate(actor: Any, user: Any) -> None:
    person(actor, user.pk)
    if user.is_active:
        return
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit(actor, "user", user, "changed", [{"field": "is_active", "old": False, "new": True}])


def new_invitation(actor: Any, user: Any) -> str:
    """A new link for ``user`` to set their password; the old links and their password stop working."""
    person(actor, user.pk)
    if user.pk == actor.pk:
        raise Invalid({"": [_("Change your own password on your own; do not invite yourself.")]})
    if not user.is_active:
        raise Invalid({"": [_("Reactivate this person first.")]})
    with transaction.atomic():
        link = invitations.invite(user)
        presence.sign_out_everywhere(user)
        api_tokens.revoke_all(user)
        audit(actor, "user", user, "changed", [{"field": "invitation", "secret": True}])
    return link


def record(actor: Any, user: Any, before: dict[str, Any]) -> None:
    """Audit what changed in ``user`` since ``before`` (a snapshot), changed elsewhere by ``actor``."""
    changes = diff(before, snapshot(user))
    if changes:
        audit(actor, "user", user, "changed", changes)


# --- agents' status and groups (the Agents page and /api/v1/agents/) ----------------------------

def set_status(actor: Any, agent: Agent, status: str) -> None:
    """An agent sets their own status; a manager sets it for the agents they manage (audited)."""
    if status not in Agent.Status.values:
        raise Invalid({"status": [_("Choose one of the listed statuses.")]})
    own = agent.user_id == getattr(actor, "pk", None)
    if not own and not roles.managed_agents(actor).filter(pk=agent.pk).exists():
        raise NotFound
    before = agent.status
    if before == status:
        return
    agent.status = status
    agent.save(update_fields=["status"])
    if not own:
        audit(actor, "user", agent.user, "changed", [{"field": "status", "old": before, "new": status}])


def groups_outside(groups: Iterable[AgentGroup], store_ids: set[int], kept: Iterable[AgentGroup] = ()) -> list[str]:
    """Why joining ``groups`` is refused to someone working in ``store_ids``: one message per group
    of a store they do not work in (``kept``: groups they are in already, which may stay)."""
    kept = set(kept)
    return [_("%(group)s is a group of %(store)s, where this person does not work.")
            % {"group": group.name, "store": group.store}
            for group in groups if group.store_id is not None and group.store_id not in store_ids
            and group not in kept]


def set_groups(actor: Any, agent: Agent, groups: Iterable[AgentGroup]) -> None:
    """``agent``'s membership of the groups ``actor`` may change (roles.joinable_groups) becomes
    ``groups``; their other groups stay as they are. A group of a store the agent does not work in
    is refused (Invalid), since it would give them nothing of that store's mail anyway."""
    if not roles.managed_agents(actor).filter(pk=agent.pk).exists():
        raise NotFound
    wanted = set(groups)
    outside = groups_outside(wanted, {store.pk for store in agent.stores.all()}, agent.groups.all())
    if outside:
        raise Invalid({"groups": outside})
    changeable = roles.joinable_groups(actor, agent, roles.managed_groups(actor))
    before = sorted(agent.groups.values_list("name", flat=True))
    kept = [group for group in agent.groups.all() if group not in changeable]
    agent.groups.set([*kept, *(group for group in changeable if group in wanted)])
    after = sorted(agent.groups.values_list("name", flat=True))
    if before != after:
        audit(actor, "user", agent.user, "changed", [{"field": "groups", "old": before, "new": after}])
