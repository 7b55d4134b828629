"""SQLite's planner statistics: gathered after ``migrate`` and by the periodic housekeeping job for
the tables that have rows and none yet, and again for those that grew tenfold; nothing on PostgreSQL."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from buzon.core.housekeeping import after_migrate, optimize_database
from buzon.core.models import PeriodicJob
from buzon.core.periodic import run_due_jobs
from buzon.crm.models import Customer, Store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _sqlite_without_statistics() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("statistics are SQLite's concern; PostgreSQL's autovacuum gathers its own")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone():
            cursor.execute("DELETE FROM sqlite_stat1")


def _analyzed() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone() is None:
            return set()
        cursor.execute("SELECT DISTINCT tbl FROM sqlite_stat1")
        return {row[0] for row in cursor.fetchall()}


def _shop(customers: int) -> None:
    store = Store.objects.create(name="Tienda")
    Customer.objects.bulk_create([Customer(name=f"Cliente {i}", store=store) for i in range(customers)])


def test_the_periodic_job_gathers_statistics(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                    "QUEUES": settings.TASK_QUEUES}}
    settings.PERIODIC_TASKS = {"database-statistics": settings.PERIODIC_TASKS["database-statistics"]}
    _shop(50)
    assert "crm_customer" not in _analyzed()
    PeriodicJob.objects.all().delete()
    assert run_due_jobs("test-worker") == ["database-statistics"]
    assert {"crm_customer", "crm_store"} <= _analyzed()


def test_only_missing_or_grown_statistics_are_gathered_again():
    _shop(50)
    assert "crm_customer" in optimize_database()
    assert optimize_database() == []  # nothing new: a run costs a few look-ups
    store = Store.objects.get()
    Customer.objects.bulk_create([Customer(name=f"Otro {i}", store=store) for i in range(1000)])
    assert optimize_database() == ["crm_customer"]  # 1,050 rows: over ten times the 100 it counts at least


def test_migrate_gathers_them_and_a_flush_does_not():
    _shop(20)
    after_migrate(sender=None, using="default", plan=None)  # what a test's flush sends: nothing done
    assert "crm_customer" not in _analyzed()
    call_command("migrate", verbosity=0, interactive=False)
    assert "crm_customer" in _analyzed()


def test_statistics_count_every_row_not_a_sample():
    """A sample caps the rows a value is counted for at its size: 2,500 customers with no agent
    would look like ~1,000 per agent, and the planner would gather an agent's rows through that
    index and sort them instead of walking the list's. Read whole, the index says 2,500."""
    _shop(2500)
    optimize_database()
    with connection.cursor() as cursor:
        cursor.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'customer_agent_created'")
        assert cursor.fetchone()[0].split()[:2] == ["2500", "2500"]
