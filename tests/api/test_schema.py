"""The OpenAPI schema generates cleanly and the docs are served from the sidecar (no CDN)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.routers import DefaultRouter

from buzon.api.mailboxes import EmailAccountViewSet, EmailDomainViewSet
from buzon.api.stores import StoreViewSet
from tests.support.assets import from_elsewhere, loaded


def test_email_configuration_endpoints_document_without_warnings():
    router = DefaultRouter()
    router.register("email-domains", EmailDomainViewSet, basename="email-domain")
    router.register("email-accounts", EmailAccountViewSet, basename="email-account")
    router.register("stores", StoreViewSet, basename="store")
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=[path("api/v1/", include(router.urls))]).get_schema(request=None, public=True)
    problems = dict(GENERATOR_STATS._warn_cache) | dict(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert not problems
    account = schema["components"]["schemas"]["EmailAccount"]["properties"]
    assert account["password"]["writeOnly"] is True
    for name in ("state", "last_error", "last_synced_at", "progress"):
        assert account[name]["readOnly"] is True, name
    assert "/api/v1/email-accounts/{id}/test/" in schema["paths"]
    assert "/api/v1/email-accounts/{id}/sync/" in schema["paths"]


def test_whole_api_schema_is_valid_openapi(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--file", str(out))
    text = out.read_text()
    for route in ("/api/v1/email-domains/", "/api/v1/email-accounts/", "/api/v1/stores/"):
        assert route in text


@pytest.mark.django_db
def test_schema_and_docs_served(client, django_user_model):
    user = django_user_model.objects.create_user("u", password="p")
    client.force_login(user)
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert not from_elsewhere(html) and any("/static/drf_spectacular_sidecar/" in url for url in loaded(html))


def test_the_send_schema_says_which_account_a_send_without_one_leaves_through(tmp_path):
    """An API user reading the schema learns what `"account": null` (or no account) does."""
    out = tmp_path / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(out))
    schemas = json.loads(out.read_text())["components"]["schemas"]
    send = [s for s in schemas.values() if {"in_reply_to", "account", "record"} <= set(s.get("properties", {}))]
    assert send
    for schema in send:
        account = schema["properties"]["account"]
        assert account.get("nullable") is True
        assert "Left out or null" in account["description"]
        assert "default outgoing account" in account["description"]
