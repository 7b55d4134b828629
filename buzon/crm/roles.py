"""Who may see and change what: the one place that decides (every view, API viewset and download asks here).

Three roles, all plain Django objects so they are clear in the admin:

- administrator: a staff user (``is_staff``) sees and changes everything;
- supervisor: an Agent whose user is in the auth group "supervisor"; manages the email accounts,
  agents and mail of the stores they belong to;
- agent: an Agent; sees the mail, customers and records of their stores and agent groups, and
  whatever is assigned to them. Changes no settings.

Mail and records that belong to no store (an installation without stores, an account not given
one) are reached the way helpdesks grant mailbox access (Help Scout, Front, Zendesk's group-
restricted agents): administrators see them, and so do the agents of the agent group that brought
them in (the account's or the customer's group), the agent they are assigned to and the person
who wrote them. Belonging to no store never makes a row everyone's. An agent group reaches only
such store-less rows: a store's rows are reached through the store alone, so an agent of store B
put in store A's group (which buzon.crm.people refuses) still sees nothing of store A. A signed-in user without an
Agent row is treated as an agent of no store and no group. An API token acts as its user, so the
same rules apply. Rows are scoped by field paths per model (given here as data, so this module imports no
context above crm): the store path, the agent-group paths and the assigned-agent path.

Mail and conversations carry all of these as columns of their own row (the store they were written
in, the agent groups that reach them while they have no store, kept current by the database:
buzon.messages.reach), so what an agent sees is a condition on the row's indexed columns that a list
walks in its order: no join, and DISTINCT only where a path can repeat a row (``repeats_rows``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Exists, Model, Q, QuerySet
from django.db.models.expressions import RawSQL

from buzon.crm.models import Agent, AgentGroup, Store

SUPERVISOR_GROUP = "supervisor"

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Scope:
    """How a model's rows reach a store, an agent group and an assigned agent ("" = not at all)."""

    store: str = ""
    groups: tuple[str, ...] = ()
    agent: str = ""
    creator: str = ""  # a user foreign key: people always see what they wrote themselves
    # What must be null for a group to reach a row (default: the store path). People are not
    # store-less rows: colleagues are reached through a store-less group they share.
    group_wall: str = ""
    # (group path, field): that path reaches a row only where the field is null too. A store-less
    # notice that left through a store's account (buzon.messages.outbox) is not that store's group's.
    group_walls: tuple[tuple[str, str], ...] = ()
    # The group paths are columns the database keeps null on a store's rows (buzon.messages.reach):
    # the wall is in them, and a store condition beside them would only offer a planner the wrong index.
    walled_groups: bool = False


# Model label -> how its rows are scoped. A model missing here is visible to administrators only.
SCOPES: dict[str, Scope] = {
    # A message's own columns, set when it was written: its store (its account's then, not now) and
    # the groups that reach it while it has no store (buzon.messages.reach: its customer's group, its
    # store-less account's group; null for a store's mail). No join: a list of one store's mail
    # walks the (store, -created_at, -id) index.
    "messages_app.Message": Scope(store="store", groups=("customer_group", "account_group"),
                                  agent="agent", creator="created_by", walled_groups=True),
    "messages_app.Attachment": Scope(store="message__store",
                                     groups=("message__customer_group", "message__account_group"),
                                     agent="message__agent", creator="message__created_by", walled_groups=True),
    # A conversation's own columns, as a message's: the inbox's filters use them with their order indexes.
    "messages_app.Conversation": Scope(store="store", groups=("customer_group", "account_group"), agent="agent",
                                       walled_groups=True),
    "crm.Customer": Scope(store="store", groups=("agent_group",), agent="agent"),
    "crm.Contact": Scope(store="customer__store", groups=("customer__agent_group",), agent="customer__agent"),
    "crm.Ticket": Scope(store="store", groups=("customer__agent_group",), agent="agent"),
    "crm.JobApplicant": Scope(store="store"),
    "crm.Store": Scope(store=""),  # handled by visible_stores()
    "crm.AgentGroup": Scope(store="store", groups=("id",)),  # a group's members see it
    # Colleagues (of a store, or of a store-less group), and oneself.
    "crm.Agent": Scope(store="stores", groups=("groups",), agent="id", group_wall="groups__store"),
    "mailboxes.EmailAccount": Scope(store="store", groups=("agent_group",)),
    "mailboxes.EmailDomain": Scope(store="accounts__store", groups=("accounts__agent_group",)),
}


def is_admin(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def agent_of(user: Any) -> Agent | None:
    """The user's Agent row, and whether they supervise, in one query cached on the user object for
    the request; ``user.agent`` (templates) reads the same row."""
    if user is None or not user.is_authenticated:
        return None
    if not hasattr(user, "_buzon_agent"):
        agent = (Agent.objects.filter(user_id=user.pk)
                 .annotate(supervises=Exists(user.groups.filter(name=SUPERVISOR_GROUP)),
                           store_list=_id_list("stores"), group_list=_id_list("groups")).first())
        user._buzon_agent = agent
        user._buzon_supervisor = bool(agent and agent.supervises)  # type: ignore[attr-defined]
        if agent is not None:  # their stores and groups (_memberships), read in the same query
            user._buzon_store_ids = _ids(agent.store_list)  # type: ignore[attr-defined]
            user._buzon_group_ids = _ids(agent.group_list)  # type: ignore[attr-defined]
        Agent._meta.get_field("user").remote_field.set_cached_value(user, agent)
        if agent is not None:
            Agent._meta.get_field("user").set_cached_value(agent, user)
    return user._buzon_agent  # type: ignore[no-any-return]


def _id_list(field: str) -> RawSQL:
    """The ids an agent's many-to-many ``field`` holds, as one comma-separated text (a subquery of
    the agent row: its stores and groups come with it, not in a query of their own)."""
    through = Agent._meta.get_field(field).remote_field.through  # type: ignore[union-attr]
    own = through._meta.get_field("agent").column
    other = next(f.column for f in through._meta.concrete_fields if f.is_relation and f.column != own)
    joined = f"group_concat({other})" if connection.vendor == "sqlite" else f"string_agg({other}::text, ',')"
    return RawSQL(f"SELECT {joined} FROM {through._meta.db_table} WHERE {own} = {Agent._meta.db_table}.id", ())  # noqa: S611,S608  # nosec B611 B608  # model names only


def _ids(text: str | None) -> frozenset[int]:
    return frozenset(int(pk) for pk in (text or "").split(",") if pk)


def is_supervisor(user: Any) -> bool:
    if agent_of(user) is None:
        return False
    return bool(user._buzon_supervisor)


def role(user: Any) -> str:
    """"admin", "supervisor", "agent" (any other signed-in user) or "" (anonymous or inactive)."""
    if is_admin(user):
        return "admin"
    if is_supervisor(user):
        return "supervisor"
    return "agent" if user is not None and user.is_authenticated and user.is_active else ""


def store_ids(user: Any) -> set[int]:
    """The user's stores (read with their agent row by agent_of, cached on the user for the request)."""
    if agent_of(user) is None:
        return set()
    return set(user._buzon_store_ids)


def group_ids(user: Any) -> set[int]:
    """The user's agent groups (read and cached with their stores)."""
    if agent_of(user) is None:
        return set()
    return set(user._buzon_group_ids)


def supervised_store_ids(user: Any) -> set[int]:
    return store_ids(user) if is_supervisor(user) else set()


def terms(label: str, user: Any) -> list[Q] | None:
    """The rule for ``label``'s rows as the conditions any one of which lets ``user`` see a row: None
    means every row (administrators), [] none. Each is on columns an index starts with, so a list can
    read a page of each in its order and merge them (buzon.core.keyset), which no planner does for
    their OR (it gathers every row the OR selects and sorts them)."""
    if is_admin(user):
        return None
    if not (user is not None and user.is_authenticated and user.is_active):
        return []
    scope = SCOPES.get(label)
    agent = agent_of(user)
    if scope is None:
        return []
    # One term per store and per group (an equality an index serves in order, where an IN list would
    # be sorted), and only the paths that can reach something: a path with nothing to match still
    # joins its tables.
    found = []
    if scope.creator:
        found.append(Q(**{scope.creator: user.pk}))
    if scope.store:
        found += [Q(**{scope.store: store}) for store in sorted(store_ids(user))]
    if agent is None:
        return found
    for path in scope.groups:
        # A group reaches only store-less rows: its store's rows reach its members through their
        # stores (above), and another store's rows never do, whoever was put in the group.
        wall = scope.group_wall or scope.store
        walls = [wall] if wall and not scope.walled_groups else []
        walls += [field for group_path, field in scope.group_walls if group_path == path]
        found += [Q(**{path: group, **{f"{field}__isnull": True for field in walls}})
                  for group in sorted(group_ids(user))]
    if scope.agent:
        found.append(Q(**{scope.agent: agent.pk}))
    return found


def scope_q(label: str, user: Any) -> Q | None:
    """The filter for ``label``'s rows ``user`` may see; None means every row (administrators)."""
    found = terms(label, user)
    if found is None:
        return None
    allowed = Q(pk__in=[])
    for term in found:
        allowed |= term
    return allowed


def is_scoped(model: type[Model]) -> bool:
    """Whether rows of ``model`` are cut per user here (others, e.g. users, are not this module's)."""
    return model._meta.label in SCOPES


def _repeats(model: type[Model], path: str) -> bool:
    """Whether joining along ``path`` may repeat a row: it crosses a many-to-many or reverse relation."""
    for part in path.split("__"):
        field = model._meta.get_field(part)
        if field.many_to_many or field.one_to_many:
            return True
        if not field.is_relation or field.related_model is None:
            return False
        model = field.related_model  # type: ignore[assignment]
    return False


_REPEATING: dict[str, bool] = {}


def repeats_rows(model: type[Model]) -> bool:
    """Whether the role condition of ``model`` may repeat a row (and so needs DISTINCT)."""
    label = model._meta.label
    if label not in _REPEATING:
        scope = SCOPES.get(label, Scope())
        paths = [scope.store, *scope.groups, scope.agent, scope.creator, scope.group_wall,
                 *(field for _path, field in scope.group_walls)]
        _REPEATING[label] = any(_repeats(model, path) for path in paths if path)
    return _REPEATING[label]


def visible(queryset: QuerySet[M], user: Any) -> QuerySet[M]:
    """``queryset`` cut down to the rows ``user`` may see."""
    if queryset.model._meta.label == "crm.Store":
        return queryset if is_admin(user) else queryset.filter(pk__in=store_ids(user))
    condition = scope_q(queryset.model._meta.label, user)
    if condition is None:
        return queryset
    # Paths through many-to-many or reverse relations may repeat a row: only those need DISTINCT,
    # which would stop a list's index from giving its rows in order (a sort of every visible row).
    filtered = queryset.filter(condition)
    return filtered.distinct() if repeats_rows(queryset.model) else filtered


def _all(label: str) -> QuerySet[Any]:
    return apps.get_model(label).objects.all()  # type: ignore[no-any-return]


def visible_messages(user: Any) -> QuerySet[Any]:
    return visible(_all("messages_app.Message"), user)


def visible_attachments(user: Any) -> QuerySet[Any]:
    return visible(_all("messages_app.Attachment"), user)


def visible_customers(user: Any) -> QuerySet[Any]:
    return visible(_all("crm.Customer"), user)


def visible_accounts(user: Any) -> QuerySet[Any]:
    return visible(_all("mailboxes.EmailAccount"), user)


def visible_stores(user: Any) -> QuerySet[Store]:
    return visible(Store.objects.all(), user)


def sendable_accounts(user: Any) -> QuerySet[Any]:
    """The email accounts ``user``'s mail may leave through: every one for administrators; else those
    they can see (their stores', their agent groups'), those they own, and the installation's default
    outgoing account when it belongs to no store (the implementer's, which carries the mail of those
    who have no account of their own). A store's account never carries another store's mail."""
    accounts = _all("mailboxes.EmailAccount")
    condition = scope_q("mailboxes.EmailAccount", user)
    if condition is None:
        return accounts  # type: ignore[no-any-return]
    if user is not None and user.is_authenticated and user.is_active:
        condition |= Q(owner_id=user.pk) | Q(store__isnull=True, default_outgoing=True)
    return accounts.filter(condition).distinct()  # type: ignore[no-any-return]


def may_send_through(user: Any, account: Any) -> bool:
    return account is not None and sendable_accounts(user).filter(pk=account.pk).exists()


def can_manage_accounts(user: Any, store: Store | int | None) -> bool:
    """Administrators manage every account; supervisors those of their stores (not store-less ones)."""
    if is_admin(user):
        return True
    store_id = store.pk if isinstance(store, Store) else store
    return store_id is not None and store_id in supervised_store_ids(user)


def may_choose_default_accounts(user: Any) -> bool:
    """The default incoming and outgoing accounts serve the whole installation: administrators choose them."""
    return is_admin(user)


def can_manage_any_accounts(user: Any) -> bool:
    return is_admin(user) or bool(supervised_store_ids(user))


def can_manage_agents(user: Any, store_ids_of_agent: set[int]) -> bool:
    """Supervisors manage agents who work only in stores they supervise."""
    if is_admin(user):
        return True
    mine = supervised_store_ids(user)
    return bool(mine) and bool(store_ids_of_agent) and store_ids_of_agent <= mine


def can_manage_any_agents(user: Any) -> bool:
    return is_admin(user) or bool(supervised_store_ids(user))


def managed_agents(user: Any) -> QuerySet[Agent]:
    """Agents whose status ``user`` may set: every one for administrators; for a supervisor, the
    agents who work only in stores they supervise, never an administrator."""
    if is_admin(user):
        return Agent.objects.all()
    mine = supervised_store_ids(user)
    if not mine:
        return Agent.objects.none()
    return (Agent.objects.filter(stores__in=mine).exclude(stores__in=Store.objects.exclude(pk__in=mine))
            .exclude(user__is_staff=True).distinct())


def managed_groups(user: Any) -> QuerySet[AgentGroup]:
    """Agent groups whose members ``user`` may change: all (administrators), or their stores' groups."""
    if is_admin(user):
        return AgentGroup.objects.all()
    return AgentGroup.objects.filter(store_id__in=supervised_store_ids(user))


def joinable_groups(user: Any, agent: Agent, groups: Iterable[AgentGroup]) -> list[AgentGroup]:
    """Those of ``groups`` that ``user`` may put ``agent`` in (or take them out of).

    An administrator: store-less groups and those of the agent's stores (and those they are in, to
    leave). A supervisor: groups of a store they supervise, for an agent who works in that store and is not
    an administrator. Other stores' agents and groups are never theirs to change. (Reads
    ``agent.stores`` through any prefetch, so a page of agents costs no query per agent.)
    """
    works_in = {store.pk for store in agent.stores.all()}
    if is_admin(user):
        # Never into a group of a store they do not work in (leaving one stays possible).
        current = {group.pk for group in agent.groups.all()}
        return [group for group in groups
                if group.store_id is None or group.store_id in works_in or group.pk in current]
    if agent.user.is_staff:
        return []
    mine = supervised_store_ids(user) & works_in
    return [group for group in groups if group.store_id in mine]


def may_join(user: Any, agent: Agent, group: AgentGroup) -> bool:
    return bool(joinable_groups(user, agent, [group]))


def refused_group_changes(user: Any, agent: Agent, groups: set[AgentGroup]) -> list[AgentGroup]:
    """The groups among those ``agent`` would join or leave (to end up in ``groups``) that ``user``
    may not change; empty means the change is allowed."""
    current = set(agent.groups.all())
    return sorted((g for g in current ^ set(groups) if not may_join(user, agent, g)), key=lambda g: g.name)


def account_field_choices(user: Any) -> dict[str, QuerySet[Any]] | None:
    """What an account's related fields may point at when ``user`` edits it; None: anything (admins).

    A supervisor files accounts under the stores they supervise only (never none: store-less
    accounts are the administrators'), gives them those stores' agent groups, owners who work in
    those stores and the email domains they can see.
    """
    if is_admin(user):
        return None
    mine = supervised_store_ids(user)
    users = get_user_model().objects.filter(agent__stores__in=mine).distinct()
    return {
        "store": Store.objects.filter(pk__in=mine),
        "agent_group": AgentGroup.objects.filter(store_id__in=mine),
        "owner": users,
        "domain": visible(_all("mailboxes.EmailDomain"), user),
    }


def can_change_settings(user: Any) -> bool:
    """Domains, templates, stores, DKIM, processes: administrators only."""
    return is_admin(user)


def can_see(user: Any, obj: Model) -> bool:
    return visible(type(obj)._default_manager.filter(pk=obj.pk), user).exists()


def may_enter_password(user: Any, account: Any) -> bool:
    """An account awaiting its owner's password gets it from the owner only (seed 2.1).

    Nobody else, administrators included, may type it in: the owner is asked at sign-in.
    """
    waiting = bool(account.pk and account.awaiting_password and account.owner_id)
    return not waiting or account.owner_id == getattr(user, "pk", None)
