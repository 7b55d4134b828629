from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "buzon.core"
    label = "core"

    def ready(self) -> None:
        from buzon.core import checks  # noqa: F401 - registers Buzón's system checks
