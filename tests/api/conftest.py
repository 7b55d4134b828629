"""API clients (staff, plain user, anonymous) and a domain pointing at the test Dovecot."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from buzon.core import api_tokens
from buzon.mailboxes.models import EmailDomain


def _client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_tokens.create(user)[1]}")
    return client


@pytest.fixture
def staff_api(db) -> APIClient:
    user = get_user_model().objects.create_user("admin", "admin@example.test", "admin-pass", is_staff=True)
    return _client_for(user)


@pytest.fixture
def user_api(db) -> APIClient:
    user = get_user_model().objects.create_user("agent", "agent@example.test", "agent-pass")
    return _client_for(user)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture
def dovecot_domain(db, dovecot) -> EmailDomain:
    """example.test served by the test Dovecot over IMAP STARTTLS (its certificate names localhost)."""
    return EmailDomain.objects.create(
        domain_name="example.test", incoming_protocol="imap", incoming_host="localhost",
        incoming_port=dovecot.imap_port, incoming_security="starttls",
    )
