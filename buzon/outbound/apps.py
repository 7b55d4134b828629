from django.apps import AppConfig


class OutboundConfig(AppConfig):
    name = "buzon.outbound"
    label = "outbound"
