"""What the pages say about the incoming accounts a store may have follows the site's setting
(BUZON_MAX_INCOMING_ACCOUNTS_PER_STORE), in English and Spanish, instead of a fixed 10."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from buzon.crm.models import Store

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("language", "words"), [
    ("en", "at most 3 incoming accounts per store: the BUZON_MAX_INCOMING_ACCOUNTS_PER_STORE setting"),
    ("es", "como máximo 3 cuentas entrantes por tienda: el ajuste BUZON_MAX_INCOMING_ACCOUNTS_PER_STORE"),
])
def test_the_account_forms_store_help_names_the_sites_limit(staff_client: Client, settings: Any,
                                                            language: str, words: str) -> None:
    settings.MAX_INCOMING_ACCOUNTS_PER_STORE = 3
    assert words in staff_client.get("/settings/email/accounts/new/", HTTP_ACCEPT_LANGUAGE=language).content.decode()


@pytest.mark.parametrize(("language", "words"), [
    ("en", "at most 3 incoming ones"), ("es", "como máximo 3 entrantes"),
])
def test_the_stores_page_names_the_sites_limit(staff_client: Client, settings: Any, language: str,
                                              words: str) -> None:
    settings.MAX_INCOMING_ACCOUNTS_PER_STORE = 3
    Store.objects.create(name="Norte")
    assert words in staff_client.get("/settings/stores/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
