"""Ticking «Entrante predeterminado» / «Saliente predeterminado» on another account moves the mark to
it, in the account form and in the API, as the star on the list does; only administrators may move
it (the default accounts serve the whole installation). Before, both faces checked the database's
one-default constraint themselves and refused the move ("No se cumple la restricción
mailboxes_one_default_incoming", "email account with this default incoming already exists").
Saves probe a real Dovecot and SMTP server."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from buzon.core import api_tokens
from buzon.crm.models import Agent, Store
from buzon.crm.roles import SUPERVISOR_GROUP
from buzon.mailboxes.models import EmailAccount, EmailDomain
from buzon.web.forms import AccountForm

pytestmark = pytest.mark.django_db
PASSWORD = "buzon-secreto"  # noqa: S105 - the mailboxes' test password
REFUSAL = "Solo un administrador elige las cuentas predeterminadas"


@pytest.fixture
def accounts(dovecot: Any, smtp_plain: Any) -> dict[str, Any]:
    """Store Norte's two accounts (receive and send) on Dovecot and the SMTP server; the first holds
    both default marks, as the first account saved does."""
    EmailDomain.objects.create(domain_name="example.test", incoming_protocol="imap", incoming_host="localhost",
                               incoming_port=dovecot.imaps_port, incoming_security="ssl", smtp_host="localhost",
                               smtp_port=smtp_plain.port, smtp_security="none", smtp_auth=True)
    norte = Store.objects.create(name="Norte")
    made = {}
    for name, default in (("first", True), ("second", False)):
        address = dovecot.add_user(password=PASSWORD)
        smtp_plain.users[address] = PASSWORD
        account = EmailAccount(email_address=address, store=norte, incoming_enabled=True, outgoing_enabled=True,
                               default_incoming=default, default_outgoing=default, state="idle")
        account.set_password(PASSWORD)
        account.save()
        made[name] = account
    return {**made, "norte": norte}


def _defaults() -> tuple[str, str]:
    return (EmailAccount.objects.get(default_incoming=True).email_address,
            EmailAccount.objects.get(default_outgoing=True).email_address)


def _form_data(account: EmailAccount, **changes: Any) -> dict[str, Any]:
    """What the browser posts for the account's form as it is shown, with `changes` made."""
    form = AccountForm(instance=account)
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = changes.get(name, form[name].value())
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list):
            data[name] = "\n".join(value)
        elif value is not None:
            data[name] = value if name != "smtp_auth" else "unknown"
    return data


def _person(username: str, *, admin: bool = False, supervises: Store | None = None) -> Any:
    user = get_user_model().objects.create_user(username, f"{username}@tienda.example", "clave-de-prueba-1",
                                                is_staff=admin)
    if supervises is not None:
        Agent.objects.create(user=user).stores.add(supervises)
        user.groups.add(Group.objects.get_or_create(name=SUPERVISOR_GROUP)[0])
    return user


def _browser(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="es")
    client.force_login(user)
    return client


def _api(user: Any) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="es")
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_tokens.create(user)[1]}")
    return client


def test_the_administrator_moves_both_marks_by_ticking_them_in_the_form(accounts):
    first, second = accounts["first"], accounts["second"]
    page = _browser(_person("admin", admin=True)).post(
        f"/settings/email/accounts/{second.pk}/edit/",
        _form_data(second, default_incoming=True, default_outgoing=True))
    assert page.status_code == 302, page.content.decode()[:3000]
    assert _defaults() == (second.email_address, second.email_address)
    listing = _browser(get_user_model().objects.get(username="admin")).get("/settings/email/accounts/")
    assert "restricción" not in listing.content.decode()
    first.refresh_from_db()
    assert not first.default_incoming and not first.default_outgoing


def test_the_administrator_moves_a_mark_through_the_api(accounts):
    first, second = accounts["first"], accounts["second"]
    api = _api(_person("admin", admin=True))
    response = api.patch(f"/api/v1/email-accounts/{second.pk}/", {"default_incoming": True}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["default_incoming"] is True
    assert _defaults() == (second.email_address, first.email_address)
    response = api.patch(f"/api/v1/email-accounts/{second.pk}/", {"default_outgoing": True}, format="json")
    assert response.status_code == 200, response.content
    assert _defaults() == (second.email_address, second.email_address)
    assert api.get(f"/api/v1/email-accounts/{first.pk}/").json()["default_incoming"] is False


def test_a_supervisor_cannot_move_the_installations_default(accounts):
    """A store's supervisor manages the store's accounts, but the defaults serve every store: ticking
    one is refused, naming the field, in Spanish, and both marks stay where they were."""
    first, second = accounts["first"], accounts["second"]
    boss = _person("jefa", supervises=accounts["norte"])
    page = _browser(boss).post(f"/settings/email/accounts/{second.pk}/edit/",
                               _form_data(second, default_incoming=True))
    assert page.status_code == 200
    html = page.content.decode()
    error = html[html.index('data-error-for="default_incoming"'):]
    assert REFUSAL in error[:error.index("</div>")]
    response = _api(boss).patch(f"/api/v1/email-accounts/{second.pk}/", {"default_outgoing": True}, format="json")
    assert response.status_code == 400, response.content
    assert REFUSAL in " ".join(response.json()["default_outgoing"])
    assert _defaults() == (first.email_address, first.email_address)
    # Her other changes to her store's account still save.
    page = _browser(boss).post(f"/settings/email/accounts/{second.pk}/edit/", _form_data(second, display_name="Ventas"))
    assert page.status_code == 302, page.content.decode()[:3000]
    assert EmailAccount.objects.get(pk=second.pk).display_name == "Ventas"


def test_a_supervisor_of_another_store_moves_no_mark_to_or_from_accounts_they_cannot_manage(accounts):
    """Store Sur's supervisor: Norte's accounts answer like missing ones (their marks cannot be taken
    away), and ticking a default on Sur's own account, which would pull the mark away from Norte's, is
    refused in the API, the form and the star; both marks stay on Norte's first account."""
    first, second = accounts["first"], accounts["second"]
    sur = Store.objects.create(name="Sur")
    theirs = EmailAccount(email_address="sur@example.test", store=sur, incoming_enabled=True, outgoing_enabled=True,
                          state="idle")
    theirs.set_password(PASSWORD)
    theirs.save()
    boss = _person("sergio", supervises=sur)
    api = _api(boss)
    missing = api.patch("/api/v1/email-accounts/987654321/", {"default_incoming": True}, format="json")
    assert missing.status_code == 404
    for account in (first, second):
        for field, value in (("default_incoming", True), ("default_outgoing", False)):
            response = api.patch(f"/api/v1/email-accounts/{account.pk}/", {field: value}, format="json")
            assert (response.status_code, response.content) == (404, missing.content)
    response = api.patch(f"/api/v1/email-accounts/{theirs.pk}/", {"default_incoming": True, "default_outgoing": True},
                         format="json")
    assert response.status_code == 400, response.content
    assert REFUSAL in " ".join(response.json()["default_incoming"])
    assert REFUSAL in " ".join(response.json()["default_outgoing"])
    page = _browser(boss).post(f"/settings/email/accounts/{theirs.pk}/edit/",
                               _form_data(theirs, default_incoming=True))
    assert page.status_code == 200 and REFUSAL in page.content.decode()
    assert _browser(boss).post(f"/settings/email/accounts/{theirs.pk}/default/incoming/").status_code == 403
    assert _browser(boss).post(f"/settings/email/accounts/{first.pk}/default/incoming/").status_code == 404
    assert _defaults() == (first.email_address, first.email_address)
