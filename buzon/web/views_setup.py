"""First run: the page that creates the site's first administrator (see buzon.core.first_run).

It answers only while no user exists and only with the one-time token `buzon run` printed; the
check and the creation happen in one transaction that locks the user table (PostgreSQL) or holds
SQLite's write lock, so two people opening the link at once cannot both become administrators.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import UserCreationForm
from django.db import connection, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from buzon.core import first_run


class FirstAdministratorForm(UserCreationForm):  # type: ignore[type-arg]
    email = forms.EmailField(label=_("Email address"), required=True)

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined,misc]
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for field in self.fields.values():
            field.widget.attrs.setdefault("class", "form-control")


def _lock_users() -> None:
    """Serialise two first-run submissions: the second sees the first's user and is refused."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            table = get_user_model()._meta.db_table
            cursor.execute(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE')  # noqa: S608  # nosec B608


@never_cache
def setup(request: HttpRequest) -> HttpResponse:
    if not first_run.needs_setup():
        raise Http404
    given = request.POST.get("token") or request.GET.get("token", "")
    if not first_run.token_matches(given):
        return render(request, "web/setup/token.html", {"tried": bool(given)}, status=403)
    form = FirstAdministratorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            _lock_users()
            if get_user_model().objects.exists():
                raise Http404
            user = form.save(commit=False)
            user.is_staff = user.is_superuser = True
            user.save()
        first_run.finish()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("web:home")
    return render(request, "web/setup/form.html", {"form": form, "token": given})
