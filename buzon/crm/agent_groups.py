"""Agent groups: create, rename, move to a store, set members, delete — for the web UI and the API.

Administrators manage every group; a supervisor manages their stores' groups (roles.managed_groups),
keeps them in those stores, and adds or removes only the agents they manage who work in the group's
store (roles.joinable_groups); members outside their reach stay as they are. A group an email
account uses for new customers cannot be deleted: the account would silently stop assigning.
Every change is audited through people.changed (target "group").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.db import transaction
from django.utils.translation import gettext as _

from buzon.crm import roles
from buzon.crm.models import Agent, AgentGroup, Store
from buzon.crm.people import Invalid, NotFound, audit, diff, stores_for


def group_of(actor: Any, pk: Any) -> AgentGroup:
    found = roles.managed_groups(actor).filter(pk=pk).first() if str(pk).isdigit() else None
    if found is None:
        raise NotFound
    return found


def members_for(actor: Any) -> Any:
    """The agents ``actor`` may put in groups (the faces offer these)."""
    return roles.managed_agents(actor).select_related("user").prefetch_related("stores")


def snapshot(group: AgentGroup) -> dict[str, Any]:
    return {"name": group.name, "store": str(group.store) if group.store_id else None,
            "agents": sorted(str(agent) for agent in group.agents.select_related("user"))}


def _check(actor: Any, name: str, store: Store | None, group: AgentGroup | None) -> None:
    errors: dict[str, list[str]] = {}
    name = name.strip()
    taken = AgentGroup.objects.filter(name__iexact=name)
    if group is not None:
        taken = taken.exclude(pk=group.pk)
    if not name:
        errors["name"] = [_("Enter a name.")]
    elif taken.exists():
        errors["name"] = [_("Another agent group already has this name.")]
    if not roles.is_admin(actor) and (store is None or store not in stores_for(actor)):
        errors["store"] = [_("Choose one of the stores you supervise.")]
    if errors:
        raise Invalid(errors)


def _set_members(actor: Any, group: AgentGroup, members: Iterable[Agent]) -> None:
    wanted = set(members)
    reach = set(members_for(actor))
    refused = [agent for agent in wanted - reach if agent not in set(group.agents.all())]
    if refused and not roles.is_admin(actor):
        raise Invalid({"agents": [_("You can only add agents of the stores you supervise.")]})
    if group.store_id is not None:
        # Everyone the group ends with, also members it had before being moved into a store.
        elsewhere = [agent for agent in wanted
                     if group.store_id not in {store.pk for store in agent.stores.all()}]
        if elsewhere:
            raise Invalid({"agents": [_("%(agents)s do not work in %(store)s.")
                                      % {"agents": ", ".join(str(a) for a in elsewhere), "store": group.store}]})
    if roles.is_admin(actor):
        group.agents.set(wanted)
        return
    kept = [agent for agent in group.agents.all() if agent not in reach]
    group.agents.set([*kept, *(agent for agent in wanted if agent in reach)])


def create_group(actor: Any, name: str, store: Store | None, members: Iterable[Agent] = ()) -> AgentGroup:
    if not roles.can_manage_any_agents(actor):
        raise NotFound
    _check(actor, name, store, None)
    with transaction.atomic():
        group = AgentGroup.objects.create(name=name.strip(), store=store)
        _set_members(actor, group, members)
        audit(actor, "group", group, "created",
              diff({}, {k: v for k, v in snapshot(group).items() if v not in (None, "", [])}))
    return group


def update_group(actor: Any, group: AgentGroup, *, name: str | None = None, store: Store | None | bool = False,
                 members: Iterable[Agent] | None = None) -> AgentGroup:
    """Change what is given: ``store=False`` leaves the store as it is (None means no store)."""
    group = group_of(actor, group.pk)
    new_store = group.store if store is False else store
    assert new_store is None or isinstance(new_store, Store)
    _check(actor, group.name if name is None else name, new_store, group)
    with transaction.atomic():
        before, before_store = snapshot(group), group.store_id
        group.name = group.name if name is None else name.strip()
        group.store = new_store
        group.save()
        if members is not None or group.store_id != before_store:
            # Moved into a store, its members must work there too (as when they join it).
            _set_members(actor, group, group.agents.all() if members is None else members)
        changes = diff(before, snapshot(group))
        if changes:
            audit(actor, "group", group, "changed", changes)
    return group


def accounts_using(group: AgentGroup) -> list[str]:
    """The addresses of the email accounts that give ``group`` their new customers."""
    accounts = apps.get_model("mailboxes", "EmailAccount").objects.filter(agent_group=group)
    return list(accounts.order_by("email_address").values_list("email_address", flat=True))


def why_kept(group: AgentGroup) -> str:
    """Why ``group`` cannot be deleted now ("" when it can)."""
    used = accounts_using(group)
    if not used:
        return ""
    return _("%(group)s gives new customers to agents of %(accounts)s: choose another agent group for those "
             "email accounts first.") % {"group": group.name, "accounts": ", ".join(used)}


def delete_group(actor: Any, group: AgentGroup) -> None:
    group = group_of(actor, group.pk)
    reason = why_kept(group)
    if reason:
        raise Invalid({"": [reason]})
    with transaction.atomic():
        audit(actor, "group", group, "deleted", [])
        group.delete()
