from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "buzon.core"
    label = "core"

    def ready(self) -> None:
        from buzon.core import checks  # noqa: F401 - registers Buzón's system checks
        from buzon.core.housekeeping import after_migrate

        # SQLite's planner statistics once the tables are there (buzon.core.housekeeping).
        post_migrate.connect(after_migrate, sender=self, dispatch_uid="buzon.core.statistics")
