"""`buzon supervisor USERNAME [--remove]`: make an agent a supervisor of their stores (or stop it).

A supervisor is an Agent whose user is in the auth group "supervisor" (buzon.crm.roles); the
stores they supervise are the agent's stores.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from buzon.crm import roles
from buzon.crm.models import Agent


class Command(BaseCommand):
    help = "Make the agent USERNAME a supervisor of their stores (--remove to undo)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--remove", action="store_true", help="no longer a supervisor")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        agent = Agent.objects.filter(user=user).first()
        if agent is None:
            raise CommandError(f"{user.get_username()} is not an agent: add them as an agent of a store first.")
        group, _created = Group.objects.get_or_create(name=roles.SUPERVISOR_GROUP)
        if options["remove"]:
            user.groups.remove(group)
            self.stdout.write(f"{user.get_username()} is no longer a supervisor.")
            return
        user.groups.add(group)
        stores = ", ".join(agent.stores.values_list("name", flat=True)) or "no store yet"
        self.stdout.write(f"{user.get_username()} now supervises: {stores}.")
