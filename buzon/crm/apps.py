from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "buzon.crm"
    label = "crm"
