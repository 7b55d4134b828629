"""Shared fixtures: real Dovecot and SMTP servers, a test CA, and the services switch."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import browser as browser_support
from tests.support import dovecot as dovecot_support
from tests.support.certs import TestCerts, make_certs
from tests.support.ports import TestServerPorts
from tests.support.services import require
from tests.support.smtpd import SMTPServer

pytest_plugins = ["tests.support.clients"]

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def test_certs() -> Iterator[TestCerts]:
    directory = Path(tempfile.mkdtemp(prefix="buzon-certs-"))
    directory.chmod(0o755)
    yield make_certs(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def _trust_test_ca(test_certs: TestCerts) -> None:
    """Buzón (and the processes tests start) trust the test CA, as a site trusts its own CA."""
    from django.conf import settings

    settings.TLS_CA_FILE = str(test_certs.ca_file)
    os.environ["BUZON_CA_FILE"] = str(test_certs.ca_file)


@pytest.fixture(autouse=True, scope="session")
def _probe_reaches_test_servers() -> None:
    """The probe only reaches mail ports; tests add their own servers' ports (tests.support.ports)."""
    from django.conf import settings

    settings.PROBE_ALLOWED_PORTS = TestServerPorts(settings.PROBE_ALLOWED_PORTS)


@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashing() -> None:
    """Passwords set in tests are hashed with one PBKDF2 iteration (tests.support.quick_hasher);
    those hashed at full strength still verify."""
    from django.conf import settings
    from django.contrib.auth import hashers

    settings.PASSWORD_HASHERS = ["tests.support.quick_hasher.QuickPBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]
    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Each test starts with the process's cache empty (e.g. the words search knows are common:
    database rows and ids repeat from test to test)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _site_language() -> Iterator[None]:
    """Each test starts in the site's language. A request through Django's test client runs in the
    test's own thread, where LocaleMiddleware leaves the browser's language active after the response
    (in a server every request sets its own); the next test in that process would otherwise read a
    Spanish refusal where it expects the English one."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_probe_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no probes counted: user ids repeat after rollbacks and between test
    processes, and with REDIS_URL set the counts live in one shared Redis (the database's are rolled
    back with the test)."""
    import uuid

    from django.core.cache import cache

    from buzon.mailboxes import guard

    cache.clear()
    monkeypatch.setattr(guard, "REDIS_KEY", f"buzon-test-{uuid.uuid4().hex}:probe:{{user}}:{{window}}")


@pytest.fixture(scope="session")
def dovecot(test_certs: TestCerts) -> Iterator[dovecot_support.Dovecot]:
    require(dovecot_support.available(), "Dovecot (Debian packages dovecot-imapd, dovecot-pop3d)")
    server = dovecot_support.Dovecot(certs=test_certs).start()
    yield server
    server.cleanup()


def _smtp(test_certs: TestCerts, mode: str) -> Iterator[SMTPServer]:
    server = SMTPServer(test_certs, mode=mode, users={"sender@example.test": "smtp-secret"}).start()
    yield server
    server.stop()


@pytest.fixture
def smtp_starttls(test_certs: TestCerts) -> Iterator[SMTPServer]:
    yield from _smtp(test_certs, "starttls")


@pytest.fixture
def smtp_ssl(test_certs: TestCerts) -> Iterator[SMTPServer]:
    yield from _smtp(test_certs, "ssl")


@pytest.fixture
def smtp_plain(test_certs: TestCerts) -> Iterator[SMTPServer]:
    yield from _smtp(test_certs, "plain")


@pytest.fixture
def corpus() -> Path:
    require(CORPUS.is_dir(), f"the shared mail corpus at {CORPUS}")
    return CORPUS


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    require(url.startswith(("postgres://", "postgresql://")), "PostgreSQL (DATABASE_URL)")
    return url


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    require(bool(url), "Redis (REDIS_URL)")
    return url


@pytest.fixture
def chromium(monkeypatch) -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (see tests/support/browser.py).

    One per test, not per session: Playwright's sync API marks an asyncio loop as running in this
    thread until it stops, and code under test that calls asyncio.run() (the IMAP probe) would
    then fail in every later test of the same process.
    """
    require(browser_support.available(), "Chromium (Debian package chromium) and playwright")
    # The ORM calls a test makes between page actions are synchronous; Django's async-safety
    # check would see Playwright's loop and refuse them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = browser_support.launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium, live_server) -> Iterator[object]:
    """A fresh page (own cookies, English Accept-Language) whose relative URLs go to live_server."""
    page = browser_support.new_page(chromium, live_server.url)
    yield page
    page.context.close()
