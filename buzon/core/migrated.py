"""Whether the database holds every migration: what post_migrate handlers that use today's models ask.

`buzon migrate APP MIGRATION` can leave the database at an older state (going back a release, or a
test of a migration): there, a handler reading today's models would ask for columns that do not
exist yet, and the command would fail after its migrations had run."""

from __future__ import annotations

from django.db import connections
from django.db.migrations.loader import MigrationLoader


def fully(using: str = "default") -> bool:
    loader = MigrationLoader(connections[using], ignore_no_migrations=True)
    return set(loader.graph.nodes) <= set(loader.applied_migrations)
