from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def _ensure_index(using: str = "default", **kwargs: Any) -> None:
    from buzon.search import schema

    schema.ensure(connections[using])


class SearchConfig(AppConfig):
    name = "buzon.search"
    label = "search"
    verbose_name = "Search"

    def ready(self) -> None:
        # Once per migrate (sent for every app: this one's sender only).
        post_migrate.connect(_ensure_index, sender=self, dispatch_uid="buzon.search.ensure_index")
