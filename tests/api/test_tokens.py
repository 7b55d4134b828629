"""API tokens: made on the user's own page, with the API or `buzon token`, shown once, stored only as a
hash; they stop working when revoked, when the password changes (any way it changes) and while the
user is inactive. Tokens from before hashing keep working; wrong tokens are throttled per address."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.core.management import call_command
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from buzon.api.models import ApiToken
from buzon.core import api_tokens
from tests.support import live_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Dozens of sign-ins per test: a fast hasher keeps them quick (what is tested is the counting)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ROOT = Path(__file__).resolve().parents[2]
User = get_user_model()


@pytest.fixture
def agent(db: Any) -> Any:
    return User.objects.create_user("agente", "agente@example.test", "agente-pass-123")


def _page(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(token: str, address: str = "192.0.2.10") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _works(token: str, address: str = "192.0.2.10") -> int:
    return _api(token, address).get("/api/v1/messages/").status_code


def _made_on_the_page(user: Any, name: str = "contabilidad") -> str:
    page = _page(user).post("/settings/api-tokens/", {"name": name}).content.decode()
    found = re.search(r'id="new-token-value" type="text" readonly value="([0-9a-f]{64})"', page)
    assert found, page
    return found.group(1)


def _everything_stored() -> str:
    """Every row of every table, as text: where a token kept in clear would show."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


def test_a_token_made_on_the_page_works_is_shown_once_and_stored_only_as_a_hash(agent: Any) -> None:
    token = _made_on_the_page(agent)
    assert _works(token) == 200
    listing = _page(agent).get("/settings/api-tokens/").content.decode()
    assert token[:15] in listing and "contabilidad" in listing
    assert token not in listing  # shown once, in the answer that made it
    row = ApiToken.objects.get(user=agent)
    assert row.digest != token and token not in row.digest and row.token_key == token[:15]
    assert token not in _everything_stored()
    assert ApiToken.objects.get(user=agent).last_used_at is not None


def test_the_user_menu_leads_to_the_page(agent: Any) -> None:
    page = _page(agent).get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert 'id="bz-api-tokens"' in page and "Tokens de la API" in page


def test_the_api_makes_lists_and_revokes_the_users_own_tokens(agent: Any) -> None:
    other = User.objects.create_user("otro", password="otro-pass-123")
    _row, theirs = api_tokens.create(other, "theirs")
    first = api_tokens.create(agent, "script")[1]
    client = _api(first)
    made = client.post("/api/v1/tokens/", {"name": "integración"}, format="json")
    assert made.status_code == 201
    second = made.json()["token"]
    assert made.json()["key"] == second[:15] and made.json()["name"] == "integración"
    assert _works(second) == 200
    listed = client.get("/api/v1/tokens/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert sorted(r["name"] for r in rows) == ["integración", "script"]
    assert all("token" not in r for r in rows)  # never shown again
    assert client.delete(f"/api/v1/tokens/{theirs[:15]}/").status_code == 404  # another user's: not found
    assert _works(theirs) == 200
    assert client.delete(f"/api/v1/tokens/{second[:15]}/").status_code == 204
    assert _works(second) == 401
    assert _works(first) == 200


def test_revoking_on_the_page_stops_the_token(agent: Any) -> None:
    token = _made_on_the_page(agent)
    other = User.objects.create_user("otro", password="otro-pass-123")
    theirs = api_tokens.create(other)[1]
    page = _page(agent)
    assert page.post(f"/settings/api-tokens/{theirs[:15]}/revoke/").status_code == 302
    assert _works(theirs) == 200  # not theirs to revoke
    page.post(f"/settings/api-tokens/{token[:15]}/revoke/")
    assert _works(token) == 401
    assert 'id="no-tokens"' in page.get("/settings/api-tokens/").content.decode()


def _password_page(user: Any) -> None:
    form = PasswordChangeForm(user, {"old_password": "agente-pass-123", "new_password1": "otra-clave-larga-42",
                                     "new_password2": "otra-clave-larga-42"})
    assert form.is_valid(), form.errors
    form.save()


def _admin_reset(user: Any) -> None:
    form = SetPasswordForm(user, {"new_password1": "otra-clave-larga-42", "new_password2": "otra-clave-larga-42"})
    assert form.is_valid(), form.errors
    form.save()


def _changepassword_command(user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "otra-clave-larga-42")
    call_command("changepassword", user.get_username(), stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.mark.parametrize("change", ["password change form", "admin reset", "changepassword", "set_password"])
def test_a_password_change_revokes_every_token(agent: Any, change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = [api_tokens.create(agent, name)[1] for name in ("a", "b")]
    other = User.objects.create_user("otro", password="otro-pass-123")
    theirs = api_tokens.create(other)[1]
    assert all(_works(t) == 200 for t in tokens)
    if change == "password change form":
        _password_page(agent)
    elif change == "admin reset":
        _admin_reset(agent)
    elif change == "changepassword":
        _changepassword_command(agent, monkeypatch)
    else:
        agent.set_password("otra-clave-larga-42")
        agent.save()
    assert [_works(t) for t in tokens] == [401, 401]
    assert not ApiToken.objects.filter(user=agent).exists()
    assert _works(theirs) == 200
    agent.refresh_from_db()
    agent.first_name = "Ana"
    agent.save()  # other changes to the user leave new tokens alone
    fresh = api_tokens.create(agent)[1]
    agent.save()
    assert _works(fresh) == 200


def test_an_inactive_users_tokens_are_refused(agent: Any) -> None:
    token = api_tokens.create(agent)[1]
    agent.is_active = False
    agent.save()
    assert _works(token) == 401
    agent.is_active = True
    agent.save()
    assert _works(token) == 200  # refused while inactive, not revoked


def test_a_token_is_checked_without_reading_the_users_other_tokens_and_an_expired_one_is_refused(
        agent: Any) -> None:
    """Buzón's tokens never expire: a request reads the presented token (with its user), not the
    list of the user's tokens knox reads to delete expired ones. A token given an expiry (a site
    that changes knox's TOKEN_TTL) is still refused once past it, and deleted, as knox does."""
    import datetime

    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    token = api_tokens.create(agent)[1]
    for _ in range(3):
        api_tokens.create(agent)
    with CaptureQueriesContext(connection) as queries:
        assert _works(token) == 200
    token_reads = [q["sql"] for q in queries.captured_queries if 'FROM "api_apitoken"' in q["sql"]]
    assert len(token_reads) == 1 and '"api_apitoken"."token_key" =' in token_reads[0], token_reads

    expiring_row, expiring = api_tokens.create(agent)
    ApiToken.objects.filter(pk=expiring_row.pk).update(expiry=timezone.now() + datetime.timedelta(minutes=5))
    assert _works(expiring) == 200
    ApiToken.objects.filter(pk=expiring_row.pk).update(expiry=timezone.now() - datetime.timedelta(seconds=1))
    assert _works(expiring) == 401
    assert not ApiToken.objects.filter(pk=expiring_row.pk).exists()
    assert _works(token) == 200


def test_buzon_token_prints_a_new_token_once(agent: Any, tmp_path: Path) -> None:
    from io import StringIO

    first, second = StringIO(), StringIO()
    call_command("token", "agente", stdout=first)
    call_command("token", "agente", "--name", "backup", stdout=second)
    one, two = first.getvalue().strip(), second.getvalue().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", one) and one != two
    assert _works(one) == 200 and _works(two) == 200
    assert sorted(ApiToken.objects.filter(user=agent).values_list("name", flat=True)) == ["backup", "buzon token"]


@pytest.mark.django_db(transaction=True)
def test_buzon_token_from_the_command_line(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env["BUZON_DATA_DIR"] = str(tmp_path)
    env.pop("DATABASE_URL", None)
    run = [sys.executable, "-m", "buzon.core.cli"]
    live_run.migrated(tmp_path)
    subprocess.run([*run, "shell", "-c", "from django.contrib.auth.models import User; "
                    "User.objects.create_user('ana', password='ana-pass-123')"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    done = subprocess.run([*run, "token", "ana"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert token.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("buzon.sqlite3*"))
    missing = subprocess.run([*run, "token", "nobody"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "No user named 'nobody'" in missing.stderr


@pytest.mark.django_db(transaction=True)
def test_tokens_made_before_hashing_keep_working_and_leave_no_clear_copy(agent: Any) -> None:
    from django.db.migrations.executor import MigrationExecutor

    MigrationExecutor(connection).migrate([("api", "0001_initial")])  # as a site upgrading from authtoken
    old_key = "9d34e0e628500fdfb6f1399804ba763d492a4b4f"  # DRF authtoken: 40 hex characters, kept in clear
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp NOT NULL, "
                       "user_id integer NOT NULL)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [old_key, "2024-03-01 10:00:00", agent.pk])
    MigrationExecutor(connection).migrate([("api", "0002_hash_existing_drf_tokens")])
    assert "authtoken_token" not in connection.introspection.table_names()
    assert _works(old_key) == 200
    row = ApiToken.objects.get(user=agent)
    assert row.token_key == old_key[:15] and row.created.year == 2024
    assert old_key not in _everything_stored()


def test_wrong_tokens_are_throttled_per_address(agent: Any, settings: Any) -> None:
    token = api_tokens.create(agent)[1]
    guesser = "203.0.113.50"
    for attempt in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT):
        last = _api(f"{attempt:064x}", guesser).get("/api/v1/messages/", HTTP_ACCEPT_LANGUAGE="es")
        assert last.status_code in (401, 429)
    # The failure that reached the limit is answered as locked out, and so is the right token after
    # it: the same words, about API tokens (not sign-ins), the wait said once, and Retry-After.
    refused = _api(token, guesser).get("/api/v1/messages/", HTTP_ACCEPT_LANGUAGE="es")
    wait = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    for answer in (last, refused):
        assert answer.status_code == 429 and answer["Retry-After"] == wait
        assert answer.json() == {"detail": "Demasiados tokens de la API incorrectos desde esta dirección. "
                                           "Espere 15 minutos y vuelva a intentarlo."}, answer.json()
    assert _works(token, "198.51.100.20") == 200  # another address is not affected
    # ...and the address's sign-ins are not locked by its wrong API tokens.
    assert Client(REMOTE_ADDR=guesser).post("/login/", {"username": "agente",
                                                        "password": "agente-pass-123"}).status_code == 302


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_agent_makes_and_revokes_a_token_in_the_browser(browser_page: Any) -> None:
    from tests.support.browser import screenshot, sign_in

    User.objects.create_user("agente", "agente@example.test", "agente-pass-123")
    page = browser_page
    sign_in(page, "agente", "agente-pass-123")
    page.click("#bz-user")
    page.click("#bz-api-tokens")
    page.wait_for_selector("#no-tokens")
    page.fill("#id_name", "Contabilidad")
    page.click("#make-token")
    page.wait_for_selector("#new-token")
    token = page.input_value("#new-token-value")
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert _works(token) == 200
    screenshot(page, "api-tokens-new")
    page.goto("/settings/api-tokens/")
    assert page.locator("#new-token").count() == 0 and token not in page.content()  # shown once
    assert "Contabilidad" in page.inner_text("#token-table")
    page.click(f"#revoke-{token[:15]}")
    page.wait_for_selector("#no-tokens")
    assert _works(token) == 401
