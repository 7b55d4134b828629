from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "buzon.api"
    label = "api"
