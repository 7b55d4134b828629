from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "buzon.sync"
    label = "sync"
