"""The inbox's "Email account" filter at a thousand accounts: the accounts the user may see, at most
50 options on the page (plus the chosen one), and a box beside them that finds the others by address;
another store's accounts are never offered, and the page's queries do not grow with the accounts."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from buzon.mailboxes.models import EmailAccount
from buzon.web.account_choice import CHOICES
from tests.security.conftest import World

pytestmark = pytest.mark.django_db


def _options(body: str) -> list[str]:
    select = re.search(r'<select[^>]*id="f-account"[^>]*>(.*?)</select>', body, re.S)
    return re.findall(r'<option value="(\d*)"', select.group(1) if select else body)


def _addresses(pks: list[str]) -> set[str]:
    return set(EmailAccount.objects.filter(pk__in=[p for p in pks if p]).values_list("email_address", flat=True))


def _many(world: World, n: int = 80) -> list[EmailAccount]:
    made = [EmailAccount(email_address=f"buzon{i:03d}@tienda-a.test", store=world.a.store) for i in range(n)]
    made += [EmailAccount(email_address=f"buzon{i:03d}@tienda-b.test", store=world.b.store) for i in range(5)]
    return EmailAccount.objects.bulk_create(made)


def test_a_few_accounts_are_a_plain_list(world: World):
    body = world.client("agent_a").get("/conversations/").content.decode()
    assert _addresses(_options(body)) == {"ventas@tienda-a.test"} and 'id="f-account-find"' not in body


def test_many_accounts_are_fifty_options_and_a_finder(world: World):
    ana = world.client("agent_a")
    ana.get("/conversations/?view=")  # warm: the session, the kept choice
    with CaptureQueriesContext(connection) as few:
        ana.get("/conversations/?view=")
    _many(world)
    with CaptureQueriesContext(connection) as many:
        body = ana.get("/conversations/?view=").content.decode()
    assert len(many) == len(few)
    options = _options(body)
    assert len(options) == CHOICES + 1 and 'id="f-account-find"' in body  # "All" and the first 50
    assert all(a.endswith("@tienda-a.test") for a in _addresses(options))
    found = ana.get("/conversations/accounts/?find=buzon07&account=").content.decode()
    assert _addresses(_options(found)) == {f"buzon07{i}@tienda-a.test" for i in range(10)}
    # A chosen account past the first 50 stays chosen and shown.
    late = EmailAccount.objects.get(email_address="buzon079@tienda-a.test")
    page = ana.get(f"/conversations/?account={late.pk}").content.decode()
    assert f'<option value="{late.pk}" selected>' in page
    kept = ana.get(f"/conversations/accounts/?find=buzon01&account={late.pk}").content.decode()
    assert f'<option value="{late.pk}" selected>' in kept
    # The chosen store narrows the choice; another store's accounts are never offered.
    assert _addresses(_options(ana.get(f"/conversations/accounts/?find=buzon&store={world.b.store.pk}")
                               .content.decode())) == set()
    bruno = world.client("agent_b").get("/conversations/accounts/?find=buzon").content.decode()
    assert _addresses(_options(bruno)) == {f"buzon{i:03d}@tienda-b.test" for i in range(5)}
    nobody = world.client("nobody").get("/conversations/accounts/?find=buzon").content.decode()
    assert _addresses(_options(nobody)) == set()
    nothing = ana.get("/conversations/accounts/?find=zz%00", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Ninguna dirección de cuenta contiene eso." in nothing
