from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "buzon.inbound"
    label = "inbound"
