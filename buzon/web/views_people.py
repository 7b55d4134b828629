"""Settings → Agents: create and edit people, deactivate them, invite them; and the invitation page.

Every change is made by buzon.crm.people (the API calls the same functions), which decides who may
do what; a person outside the signed-in manager's reach is a 404. The invitation page
(/welcome/<token>/) is where a new person chooses their own password, in their own language.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import SetPasswordForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from buzon.core import invitations
from buzon.core.language import language_of, set_cookie
from buzon.crm import people, roles
from buzon.outbound import invitations as invitation_mail
from buzon.web import crumbs
from buzon.web.access import agent_managers
from buzon.web.forms import BootstrapFormMixin


class PersonForm(BootstrapFormMixin, forms.Form):
    username = forms.CharField(label=gettext_lazy("Username"), max_length=150,
                               help_text=gettext_lazy("What they sign in with."))
    first_name = forms.CharField(label=gettext_lazy("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=gettext_lazy("Last name"), max_length=150, required=False)
    email = forms.EmailField(label=gettext_lazy("Email address"), required=False,
                             help_text=gettext_lazy("The invitation and notifications are sent here."))
    language = forms.ChoiceField(label=gettext_lazy("Language"), required=False,
                                 help_text=gettext_lazy("Of their pages, notifications and invitation."))
    stores: forms.ModelMultipleChoiceField[Any] = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Stores"), queryset=None, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("They see these stores' mail and customers."))
    groups: forms.ModelMultipleChoiceField[Any] = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Agent groups"), queryset=None, required=False, widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("New customers are spread across these groups' agents."))
    is_supervisor = forms.BooleanField(
        label=gettext_lazy("Supervisor"), required=False,
        help_text=gettext_lazy("Manages the email accounts, agents and agent groups of their stores."))
    is_admin = forms.BooleanField(label=gettext_lazy("Administrator"), required=False,
                                  help_text=gettext_lazy("Sees and changes everything."))

    def __init__(self, actor: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        language: Any = self.fields["language"]
        language.choices = [("", _("The site's language")), *settings.LANGUAGES]
        self.fields["stores"].queryset = people.stores_for(actor)  # type: ignore[attr-defined]
        self.fields["groups"].queryset = people.groups_for(actor)  # type: ignore[attr-defined]
        if not roles.is_admin(actor):
            del self.fields["is_admin"]
        self.style_fields()
        for name in ("stores", "groups"):
            self.fields[name].widget.attrs["class"] = "form-check-input"

    def data_for(self) -> people.PersonData:
        data = self.cleaned_data
        return people.PersonData(
            username=data["username"], first_name=data["first_name"], last_name=data["last_name"],
            email=data["email"], language=data["language"], stores=list(data["stores"]),
            groups=list(data["groups"]), supervisor=data["is_supervisor"], admin=data.get("is_admin", False))

    def add_errors(self, invalid: people.Invalid) -> None:
        for name, texts in invalid.errors.items():
            for text in texts:
                self.add_error(name if name in self.fields else None, text)


def _crumbs(*more: crumbs.Crumb) -> list[crumbs.Crumb]:
    return [*crumbs.home(), (_("Agents"), reverse("web:agent-list")), *more]


def _person(request: HttpRequest, pk: int) -> Any:
    try:
        return people.person(request.user, pk)
    except people.NotFound as missing:
        raise Http404 from missing


def _invited(request: HttpRequest, user: Any, link: str) -> HttpResponse:
    """The link to copy, shown once in the answer to what made it, and whether it was mailed."""
    not_mailed = invitation_mail.mail(user, link, request.user)
    return render(request, "web/people/invited.html", {
        "person": user, "link": request.build_absolute_uri(link), "not_mailed": not_mailed,
        "days": invitations.lifetime().days, "breadcrumbs": _crumbs((str(user), None))})


@agent_managers
def person_new(request: HttpRequest) -> HttpResponse:
    form = PersonForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, link = people.create_person(request.user, form.data_for())
        except people.Invalid as invalid:
            form.add_errors(invalid)
        else:
            return _invited(request, user, link)
    title = _("New agent")
    return render(request, "web/people/form.html", {"form": form, "title": title, "person": None,
                                                     "breadcrumbs": _crumbs((title, None))})


@agent_managers
def person_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = _person(request, pk)
    state = people.snapshot(user)
    initial = {**state, "language": user.preferences.language if hasattr(user, "preferences") else "",
               "stores": [], "groups": []}
    agent = getattr(user, "agent", None)
    if agent is not None:
        initial.update(stores=list(agent.stores.all()), groups=list(agent.groups.all()))
    form = PersonForm(request.user, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            people.update_person(request.user, user, form.data_for())
        except people.Invalid as invalid:
            form.add_errors(invalid)
        else:
            messages.success(request, _("%(person)s saved.") % {"person": user.get_full_name() or user.username})
            return redirect("web:agent-list")
    return render(request, "web/people/form.html", {
        "form": form, "title": user.get_full_name() or user.username, "person": user,
        "pending": invitations.is_pending(user), "breadcrumbs": _crumbs((user.username, None))})


@agent_managers
def person_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    user = _person(request, pk)
    if request.method == "POST":
        try:
            people.deactivate(request.user, user)
        except people.Invalid as invalid:
            messages.error(request, str(invalid))
        else:
            messages.success(request, _("%(person)s deactivated.") % {"person": user.username})
        return redirect("web:agent-list")
    return render(request, "web/people/deactivate.html", {
        "person": user, "title": _("Deactivate %(person)s") % {"person": user.username},
        "breadcrumbs": _crumbs((user.username, reverse("web:person-edit", args=[user.pk])), (_("Deactivate"), None))})


@agent_managers
@require_POST
def person_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    user = _person(request, pk)
    people.reactivate(request.user, user)
    messages.success(request, _("%(person)s can sign in again.") % {"person": user.username})
    return redirect("web:person-edit", pk=user.pk)


@agent_managers
@require_POST
def person_invite(request: HttpRequest, pk: int) -> HttpResponse:
    user = _person(request, pk)
    try:
        link = people.new_invitation(request.user, user)
    except people.Invalid as invalid:
        messages.error(request, str(invalid))
        return redirect("web:person-edit", pk=user.pk)
    return _invited(request, user, link)


@never_cache
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Anyone with the link: the invited person chooses their password, then they are signed in."""
    checked = invitations.check(token)
    if checked.user is None:
        return render(request, "web/people/invitation_invalid.html",
                      {"expired": checked.problem == "expired"}, status=404)
    user = checked.user
    language = language_of(user)
    translation.activate(language)
    request.LANGUAGE_CODE = language
    form = SetPasswordForm(user, request.POST or None)
    for field in form.fields.values():
        field.widget.attrs["class"] = "form-control"
    if request.method == "POST" and form.is_valid():
        invitations.accept(user, form.cleaned_data["new_password1"])
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome, %(name)s. Your password is set.") % {
            "name": user.get_full_name() or user.username})
        done = redirect("web:home")
        set_cookie(done, language)
        return done
    response = render(request, "web/people/invitation.html", {"form": form, "person": user})
    set_cookie(response, language)
    return response
