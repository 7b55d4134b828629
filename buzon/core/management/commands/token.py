from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from buzon.core import api_tokens


class Command(BaseCommand):
    help = ("Make a new API token for USERNAME and print it. It is shown only this once: Buzón keeps only "
            "a hash. List and revoke tokens on the user's API tokens page or at /api/v1/tokens/.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="buzon token", help="what the token is for, shown in the list")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist as exc:
            raise CommandError(
                f"No user named {options['username']!r}. Create one with: buzon createsuperuser"
            ) from exc
        if not user.is_active:
            raise CommandError(f"{user.get_username()!r} is not active: its tokens would be refused.")
        _row, token = api_tokens.create(user, options["name"])
        self.stdout.write(token)
