from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "buzon.api"
    label = "api"

    def ready(self) -> None:
        from buzon.api import signals

        signals.connect()
