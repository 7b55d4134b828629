"""The account form and API offer a supervisor only their own stores (and those stores' groups,
people and domains); another store's ids are refused, tried as every role."""

from __future__ import annotations

import re

from rest_framework.test import APIClient

from buzon.mailboxes.models import EmailAccount
from tests.security.conftest import World


def _options(html: str, name: str) -> set[str]:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S)
    assert select is not None, name
    return set(re.findall(r"<option[^>]*>([^<]*)</option>", select.group(0)))


def test_the_new_account_form_offers_a_supervisor_only_their_store(world: World):
    html = world.client("supervisor_a").get("/settings/email/accounts/new/").content.decode()
    assert _options(html, "store") == {"Tienda A"}  # not B, and no "No store"
    assert _options(html, "agent_group") == {"None", "Equipo A"}
    assert _options(html, "owner") == {"Nobody", "sara", "ana"}
    assert "ventas@tienda-b.test" not in html and "tienda-b.test" not in html
    admin = world.client("admin").get("/settings/email/accounts/new/").content.decode()
    assert {"No store", "Tienda A", "Tienda B"} <= _options(admin, "store")
    assert {"Equipo A", "Equipo B"} <= _options(admin, "agent_group")
    other = world.client("supervisor_b").get("/settings/email/accounts/new/").content.decode()
    assert _options(other, "store") == {"Tienda B"} and _options(other, "agent_group") == {"None", "Equipo B"}
    assert _options(other, "owner") == {"Nobody", "bruno", "sergio"}
    for role in ("agent_a", "agent_b", "nobody"):
        assert world.client(role).get("/settings/email/accounts/new/").status_code == 403, role


def test_editing_keeps_the_choices_of_the_supervisors_store(world: World):
    html = world.client("supervisor_a").get(f"/settings/email/accounts/{world.a.account.pk}/edit/").content.decode()
    assert _options(html, "store") == {"Tienda A"} and "Equipo B" not in html


def test_a_posted_form_naming_another_store_saves_nothing(world: World):
    before = EmailAccount.objects.count()
    for field, value in (("store", world.b.store.pk), ("agent_group", world.b.group.pk),
                         ("owner", world.users["agent_b"].pk)):
        data = {"email_address": "nueva@tienda-a.test", "store": world.a.store.pk, "sync_option": "all",
                "initial_sync_count": 10, field: value}
        response = world.client("supervisor_a").post("/settings/email/accounts/new/", data)
        assert response.status_code in (200, 403), (field, response.status_code)
        if response.status_code == 200:
            assert "Select a valid choice" in response.content.decode(), field
    assert EmailAccount.objects.count() == before


def test_the_api_refuses_another_stores_ids_to_a_supervisor(world: World):
    api = APIClient()
    api.force_authenticate(world.users["supervisor_a"])
    base = {"email_address": "nueva@tienda-a.test"}
    assert api.post("/api/v1/email-accounts/", {**base, "store": world.b.store.pk}, format="json").status_code == 403
    assert api.post("/api/v1/email-accounts/", base, format="json").status_code == 403  # store-less: admins'
    for field, value in (("agent_group", world.b.group.pk), ("owner", world.users["agent_b"].pk)):
        refused = api.post("/api/v1/email-accounts/", {**base, "store": world.a.store.pk, field: value},
                           format="json")
        assert refused.status_code == 400 and field in refused.json(), (field, refused.content)
        moved = api.patch(f"/api/v1/email-accounts/{world.a.account.pk}/", {field: value}, format="json")
        assert moved.status_code == 400 and field in moved.json(), (field, moved.content)
    created = api.post("/api/v1/email-accounts/", {**base, "store": world.a.store.pk, "agent_group": world.a.group.pk,
                                                   "owner": world.users["agent_a"].pk}, format="json")
    assert created.status_code == 201, created.content
    for role in ("agent_a", "agent_b", "supervisor_b", "nobody"):
        other = APIClient()
        other.force_authenticate(world.users[role])
        assert other.post("/api/v1/email-accounts/", {**base, "email_address": f"{role}@tienda-a.test",
                                                      "store": world.a.store.pk}, format="json").status_code == 403
