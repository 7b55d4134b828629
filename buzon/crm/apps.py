from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "buzon.crm"
    label = "crm"

    def ready(self) -> None:
        from buzon.crm import presence

        presence.connect()  # sign-in and sign-out keep Agent.online
