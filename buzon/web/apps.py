from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "buzon.web"
    label = "web"
