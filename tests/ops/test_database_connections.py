"""On PostgreSQL a web thread keeps its database connection between requests (opening one costs a
forked server process and authentication) and checks it before reuse: a connection the server
closed (a restart, a failover, an idle timeout) is opened again, never a 500.

Django's test client leaves out what starts every request in a server (``close_old_connections``
on ``request_started``), so the test sends that signal itself, as the WSGI handler does."""

from __future__ import annotations

import psycopg
import pytest
from django.core.signals import request_finished, request_started
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _request() -> int:
    """One request's database work, between the signals a server sends: the backend that served it."""
    request_started.send(sender=None)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return int(cursor.fetchone()[0])
    finally:
        request_finished.send(sender=None)


@pytest.mark.postgres
def test_requests_reuse_the_connection_and_a_closed_one_is_opened_again(postgres_url: str):
    assert connection.vendor == "postgresql"
    first = _request()
    assert _request() == first  # kept between requests
    with psycopg.connect(postgres_url.replace("postgres://", "postgresql://", 1), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [first])  # the server drops it
    assert _request() != first  # checked before reuse, found closed, opened again


def test_on_sqlite_requests_reuse_the_connection_too(settings):
    """Opening an SQLite connection costs about 2 ms of CPU (pragmas, Django's SQL functions): a web
    thread keeps it between requests and a worker slot between polls, as on PostgreSQL."""
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite run covers this")
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] > 0

    def request() -> int:
        request_started.send(sender=None)
        try:
            connection.ensure_connection()
            return id(connection.connection)
        finally:
            request_finished.send(sender=None)

    assert request() == request()
