from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "buzon.core"
    label = "core"
