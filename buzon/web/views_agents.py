"""Settings → Agents: a supervisor sets the status and agent groups of their stores' agents, and
opens each person's page (buzon.web.views_people) to edit, invite or deactivate them.

Administrators see every agent and group, and the people who are not agents. What may change is
decided by buzon.crm.roles (managed_agents, managed_groups, joinable_groups) and done by
buzon.crm.people, the same rules and functions the API uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from buzon.core import keyset
from buzon.crm import people, roles
from buzon.crm.models import Agent
from buzon.web import crumbs
from buzon.web.access import agent_managers

View = Callable[..., HttpResponse]
PAGE_SIZE = 50


def _agents(request: HttpRequest) -> Any:
    return (roles.managed_agents(request.user).select_related("user", "user__preferences")
            .prefetch_related("stores", "groups").order_by("user__username"))


def _page(request: HttpRequest, rows: Any, field: str, prefix: str = "") -> keyset.Page[Any]:
    """A keyset page of ``rows`` in ``field`` order (alphabetical), from the request's cursor."""
    return keyset.page(rows, field=field, before=request.GET.get(f"{prefix}before", ""),
                       after=request.GET.get(f"{prefix}after", ""), size=PAGE_SIZE, kind=str, descending=False)


@agent_managers
def agent_list(request: HttpRequest) -> HttpResponse:
    groups = list(roles.managed_groups(request.user).select_related("store"))
    try:
        found = _page(request, _agents(request), "user__username")
        # Administrators also manage people who are not agents (the first administrator, for one):
        # a list of its own, with its own cursor.
        others = (_page(request, get_user_model().objects.filter(agent__isnull=True), "username", "people_")
                  if roles.is_admin(request.user) else None)
    except keyset.BadCursor as bad:
        return HttpResponseBadRequest(f"cursor: {bad}")
    rows = []
    for agent in found.rows:
        member_of = {group.pk for group in agent.groups.all()}
        rows.append({"agent": agent, "groups": [(group, group.pk in member_of)
                                                for group in roles.joinable_groups(request.user, agent, groups)]})
    return render(request, "web/agents/list.html", {
        "rows": rows, "found": found, "statuses": Agent.Status.choices, "others": others,
        "breadcrumbs": [*crumbs.home(), (_("Agents"), None)],
    })


@agent_managers
@require_POST
def agent_update(request: HttpRequest, pk: int) -> HttpResponse:
    """Set one agent's status and the groups (of those this user may change) they belong to."""
    agent = get_object_or_404(_agents(request), pk=pk)
    status = request.POST.get("status", agent.status)
    if status not in Agent.Status.values:
        messages.error(request, _("Choose one of the listed statuses."))
        return redirect("web:agent-list")
    checked = {int(value) for value in request.POST.getlist("groups") if value.isdigit()}
    try:
        with transaction.atomic():  # buzon.crm.people decides what may change, and audits it
            people.set_status(request.user, agent, status)
            people.set_groups(request.user, agent, roles.managed_groups(request.user).filter(pk__in=checked))
    except people.Invalid as refused:  # e.g. a group of a store the agent does not work in: nothing saved
        for texts in refused.errors.values():
            for text in texts:
                messages.error(request, text)
        return redirect(reverse("web:agent-list") + f"#agent-{agent.pk}")
    messages.success(request, _("%(agent)s saved.") % {"agent": agent})
    return redirect(reverse("web:agent-list") + f"#agent-{agent.pk}")
