from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _ensure_reach(using: str = "default", **kwargs: Any) -> None:
    from buzon.messages import reach

    reach.ensure(connections[using])


class MessagesConfig(AppConfig):
    name = "buzon.messages"
    label = "messages_app"
    verbose_name = "Messages"

    def ready(self) -> None:
        # The built-in mail targets; integrators register theirs from their own ready().
        from buzon.crm import records
        from buzon.crm.models import Customer, JobApplicant, Ticket
        from buzon.messages import targets

        targets.register(Ticket, key="ticket", prefix="T", label=_("Ticket"), create=records.create_ticket)
        targets.register(
            JobApplicant, key="job_applicant", prefix="J", label=_("Job applicant"),
            create=records.create_job_applicant,
        )
        targets.register(Customer, key="customer", prefix="C", label=_("Customer"), create=records.create_customer)
        # A table rebuilt by a later migration (SQLite) loses its triggers: the reach columns' come back.
        post_migrate.connect(_ensure_reach, sender=self, dispatch_uid="buzon.messages.ensure_reach")
