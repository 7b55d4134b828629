"""A new site gets its first administrator in the browser, through the one-time link Buzón prints.

No shell: `buzon run` prints the link; whoever opens it creates the administrator, is signed in and
lands on the home page. Without the link's token nobody can take the site; once a user exists the
page is gone.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from buzon.core import first_run
from tests.support import browser as browser_support

PASSWORD = "Nueva-clave-2026"  # noqa: S105 - a test password


@pytest.fixture(autouse=True)
def _fresh_site():
    """Each test starts as a site that has never had a user, and leaves no token file behind."""
    first_run._done = False
    token_file = Path(settings.DATA_DIR) / first_run.TOKEN_FILE
    token_file.unlink(missing_ok=True)
    yield
    token_file.unlink(missing_ok=True)
    first_run._done = False


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_new_site_creates_its_administrator_in_the_browser(chromium, live_server):
    page = browser_support.new_page(chromium, live_server.url, locale="es-ES")
    page.goto("/")
    # The sign-in page says there is no administrator yet, in the reader's language.
    assert page.locator("#needs-setup").is_visible()
    assert "no tiene administrador" in page.locator("#needs-setup").inner_text()

    # Without the printed link's token, the page only explains where the link is.
    response = page.goto("/setup/")
    assert response.status == 403
    assert page.locator("#setup-token-needed").is_visible()
    response = page.goto("/setup/?token=adivinado")
    assert response.status == 403
    assert "no es válido" in page.locator("#setup-token-needed").inner_text()
    assert not get_user_model().objects.exists()

    link = first_run.setup_path()
    assert stat_mode(Path(settings.DATA_DIR) / first_run.TOKEN_FILE) == 0o600
    page.goto(link)
    page.fill("#id_username", "dueña")
    page.fill("#id_email", "duena@tienda.example")
    page.fill("#id_password1", "corta")
    page.fill("#id_password2", "corta")
    page.click("#create-administrator")
    assert page.locator("#form-errors, .invalid-feedback").first.is_visible()  # too short: refused, said why
    assert not get_user_model().objects.exists()
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("#create-administrator")
    page.wait_for_url(live_server.url + "/")
    browser_support.screenshot(page, "first-run-home")
    assert "dueña" in page.locator("nav, header").first.inner_text()

    user = get_user_model().objects.get()
    assert (user.username, user.email, user.is_staff, user.is_superuser) == ("dueña", "duena@tienda.example",
                                                                              True, True)
    assert user.check_password(PASSWORD)
    assert not (Path(settings.DATA_DIR) / first_run.TOKEN_FILE).exists()

    # The link is spent: a second visitor with it finds nothing, and signs in like anyone else.
    other = browser_support.new_page(chromium, live_server.url)
    assert other.goto(link).status == 404
    other.goto("/login/")
    assert other.locator("#needs-setup").count() == 0
    other.context.close()
    page.context.close()


@pytest.mark.django_db
def test_the_setup_page_is_gone_once_any_user_exists():
    token = first_run.token()
    get_user_model().objects.create_user("ana", password=PASSWORD)
    client = Client()
    assert client.get(f"/setup/?token={token}").status_code == 404
    response = client.post("/setup/", {"token": token, "username": "intrusa", "email": "i@x.example",
                                       "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 404
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["ana"]


@pytest.mark.django_db
def test_a_forged_token_creates_nobody():
    first_run.token()
    response = Client().post("/setup/", {"token": "x" * 32, "username": "intrusa", "email": "i@x.example",
                                          "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 403
    assert not get_user_model().objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_opening_the_link_at_once_make_one_administrator(postgres_url):
    assert connection.vendor == "postgresql"
    token = first_run.token()
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def submit(name: str) -> None:
        client = Client()
        barrier.wait()
        try:
            response = client.post("/setup/", {"token": token, "username": name, "email": f"{name}@x.example",
                                               "password1": PASSWORD, "password2": PASSWORD})
            statuses.append(response.status_code)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=submit, args=(f"admin{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert get_user_model().objects.count() == 1
    assert sorted(statuses).count(302) == 1


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
