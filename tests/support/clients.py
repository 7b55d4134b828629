"""Signed-in Django test clients: an administrator and a plain user (registered in tests/conftest.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client


@pytest.fixture
def staff_client(db) -> Client:
    user = get_user_model().objects.create_user("admin", "admin@example.test", "admin-pass", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def user_client(db) -> Client:
    user = get_user_model().objects.create_user("agent", "agent@example.test", "agent-pass")
    client = Client()
    client.force_login(user)
    return client
