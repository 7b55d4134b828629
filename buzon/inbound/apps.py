from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _customer_address_saved(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
    # Mail skipped because its sender was unknown is imported once the sender becomes a customer.
    if created:
        from buzon.inbound.reprocess import import_skipped_from

        import_skipped_from(instance.address, instance.store_id)


class InboundConfig(AppConfig):
    name = "buzon.inbound"
    label = "inbound"

    def ready(self) -> None:
        from buzon.crm.models import AgentGroup, CustomerEmail, Store
        from buzon.inbound import cache
        from buzon.mailboxes.models import EmailAccount

        post_save.connect(_customer_address_saved, sender=CustomerEmail, dispatch_uid="inbound-import-skipped")
        for model in (EmailAccount, AgentGroup, Store):
            post_save.connect(cache.clear, sender=model, dispatch_uid=f"inbound-cache-{model.__name__}")
            post_delete.connect(cache.clear, sender=model, dispatch_uid=f"inbound-cache-del-{model.__name__}")
