"""Settings → Agents → Agent groups: list, create, rename, move to a store, set members, delete.

Changes go through buzon.crm.agent_groups (the API calls the same functions), which decides who may
do what; a group outside the signed-in manager's stores is a 404.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from buzon.crm import agent_groups, people, roles
from buzon.crm.models import AgentGroup
from buzon.web import crumbs
from buzon.web.access import agent_managers
from buzon.web.forms import BootstrapFormMixin


class GroupForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    store: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        label=gettext_lazy("Store"), queryset=None, required=False,
        help_text=gettext_lazy("Its agents answer this store's customers."))
    agents: forms.ModelMultipleChoiceField[Any] = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Agents"), queryset=None, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("New customers of the email accounts that use this group are spread across them."))

    def __init__(self, actor: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = people.stores_for(actor)  # type: ignore[attr-defined]
        self.fields["agents"].queryset = agent_groups.members_for(actor).order_by(  # type: ignore[attr-defined]
            "user__username")
        if not roles.is_admin(actor):
            self.fields["store"].required = True
        self.style_fields()
        self.fields["agents"].widget.attrs["class"] = "form-check-input"

    def add_errors(self, invalid: people.Invalid) -> None:
        for name, texts in invalid.errors.items():
            for text in texts:
                self.add_error(name if name in self.fields else None, text)


def _crumbs(*more: crumbs.Crumb) -> list[crumbs.Crumb]:
    return [*crumbs.home(), (_("Agents"), reverse("web:agent-list")),
            (_("Agent groups"), reverse("web:group-list")), *more]


def _group(request: HttpRequest, pk: int) -> AgentGroup:
    try:
        return agent_groups.group_of(request.user, pk)
    except people.NotFound as missing:
        raise Http404 from missing


@agent_managers
def group_list(request: HttpRequest) -> HttpResponse:
    groups = people.groups_for(request.user).prefetch_related("agents__user").order_by("name")
    return render(request, "web/people/groups.html", {"groups": groups, "breadcrumbs": _crumbs()})


@agent_managers
def group_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    group = _group(request, pk) if pk else None
    initial = {"name": group.name, "store": group.store, "agents": list(group.agents.all())} if group else {}
    form = GroupForm(request.user, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if group is None:
                group = agent_groups.create_group(request.user, data["name"], data["store"], data["agents"])
            else:
                agent_groups.update_group(request.user, group, name=data["name"], store=data["store"],
                                          members=data["agents"])
        except people.Invalid as invalid:
            form.add_errors(invalid)
        else:
            messages.success(request, _("Agent group %(name)s saved.") % {"name": group.name})
            return redirect("web:group-list")
    title = group.name if group else _("New agent group")
    return render(request, "web/people/group_form.html", {"form": form, "title": title, "group": group,
                                                           "breadcrumbs": _crumbs((title, None))})


@agent_managers
def group_delete(request: HttpRequest, pk: int) -> HttpResponse:
    group = _group(request, pk)
    reason = agent_groups.why_kept(group)
    if request.method == "POST":
        try:
            agent_groups.delete_group(request.user, group)
        except people.Invalid as invalid:
            messages.error(request, str(invalid))
        else:
            messages.success(request, _("Agent group %(name)s deleted.") % {"name": group.name})
        return redirect("web:group-list")
    title = _("Delete %(name)s") % {"name": group.name}
    return render(request, "web/confirm_delete.html", {
        "object": group, "title": title, "cancel_url": "web:group-list",
        "warning": _("Its agents stay; customers it gave them stay theirs."),
        "blocked": bool(reason), "blocked_reason": reason,
        "breadcrumbs": _crumbs((title, None)),
    })
