"""Password spraying: one password tried over many usernames from one address is locked out per
address, while the per-(username, address) lockout stays as it was and other addresses sign in."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Dozens of sign-ins per test: a fast hasher keeps them quick (what is tested is the counting)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SPRAYED = "Verano2024!"


def _spray(client: Client, count: int, **headers: Any) -> list[int]:
    return [client.post("/login/", {"username": f"empleado{n}", "password": SPRAYED}, **headers).status_code
            for n in range(count)]


def test_one_password_over_20_usernames_locks_that_address_out(settings: Any) -> None:
    assert settings.LOGIN_ADDRESS_FAILURE_LIMIT <= 20
    for n in range(20):
        User.objects.create_user(f"empleado{n}", password=f"clave-propia-{n}-xyz")
    User.objects.create_user("marta", password="right-pw-123")
    sprayer = Client(REMOTE_ADDR="203.0.113.66")
    answers = _spray(sprayer, 20)
    assert answers[: settings.LOGIN_ADDRESS_FAILURE_LIMIT - 1] == [200] * (settings.LOGIN_ADDRESS_FAILURE_LIMIT - 1)
    assert answers[-1] == 429  # no username was tried more than once: the address itself is locked out
    # From that address even a right password is refused now, in the reader's language...
    locked = sprayer.post("/login/", {"username": "marta", "password": "right-pw-123"}, HTTP_ACCEPT_LANGUAGE="es")
    assert locked.status_code == 429 and "Demasiados" in locked.content.decode()
    assert "_auth_user_id" not in sprayer.session
    # ...while another address signs in as usual.
    other = Client(REMOTE_ADDR="198.51.100.9")
    assert other.post("/login/", {"username": "marta", "password": "right-pw-123"}).status_code == 302


def test_signing_in_with_a_known_account_does_not_clear_the_address_count(settings: Any) -> None:
    """A sprayer with one account of their own cannot reset the address's count by signing in with it."""
    User.objects.create_user("propia", password="propia-pw-123")
    sprayer = Client(REMOTE_ADDR="203.0.113.67")
    half = settings.LOGIN_ADDRESS_FAILURE_LIMIT // 2
    assert set(_spray(sprayer, half)) == {200}
    assert sprayer.post("/login/", {"username": "propia", "password": "propia-pw-123"}).status_code == 302
    sprayer.post("/logout/")
    rest = [sprayer.post("/login/", {"username": f"otro{n}", "password": SPRAYED}).status_code
            for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT - half)]
    assert rest[-1] == 429


def test_the_per_user_lockout_is_unchanged_below_the_address_limit(settings: Any) -> None:
    User.objects.create_user("pablo", password="right-pw-123")
    client = Client(REMOTE_ADDR="203.0.113.68")
    answers = [client.post("/login/", {"username": "pablo", "password": "nope"}).status_code
               for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert answers == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    # The address is not locked for others: a colleague at the same office signs in.
    User.objects.create_user("colega", password="colega-pw-123")
    assert client.post("/login/", {"username": "colega", "password": "colega-pw-123"}).status_code == 302


def test_a_forged_forwarded_for_does_not_escape_the_address_limit(settings: Any) -> None:
    """Behind the proxy only the right-most X-Forwarded-For hop (added by our proxy) is trusted, so a
    sprayer rotating the left part is still one address; without the proxy setting the header is ignored."""
    settings.BUZON_BEHIND_PROXY = True
    User.objects.create_user("marta", password="right-pw-123")
    proxy = Client(REMOTE_ADDR="10.0.0.2")
    answers = [proxy.post("/login/", {"username": f"empleado{n}", "password": SPRAYED},
                          HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.69").status_code
               for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT)]
    assert answers[-1] == 429
    elsewhere = proxy.post("/login/", {"username": "marta", "password": "right-pw-123"},
                           HTTP_X_FORWARDED_FOR="203.0.113.69, 198.51.100.10")
    assert elsewhere.status_code == 302  # a different real address, through the same proxy
    settings.BUZON_BEHIND_PROXY = False
    direct = Client(REMOTE_ADDR="203.0.113.70")
    answers = [direct.post("/login/", {"username": f"empleado{n}", "password": SPRAYED},
                           HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code
               for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT)]
    assert answers[-1] == 429
