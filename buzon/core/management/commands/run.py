import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from buzon.core import config, first_run, public_url, run_plan
from buzon.core.cli import QUIET_START
from buzon.core.supervisor import Child, Supervisor, buzon_argv, inherit_env


class Command(BaseCommand):
    help = ("Migrate, then run the web UI, the task workers (one more for the pipeline per extra core) and the "
            "sync engine as one process tree.")
    # Checked once the served address is known (handle): checked before it, the warning of a site
    # without BUZON_BASE_URL named port 8000 whatever --port said.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=config.env_str("BUZON_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=config.env_int("BUZON_PORT", 8000))
        parser.add_argument("--no-migrate", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        inherit_env()
        # The children use the data directory this process announced, and do not announce it again.
        os.environ["BUZON_DATA_DIR"] = str(settings.DATA_DIR)
        host, port = options["host"], options["port"]
        self._serve_links_at(public_url.served_url(host, port))
        self.check()  # said once, here: the processes it starts do not repeat it (buzon.core.checks)
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        os.environ[QUIET_START] = "1"
        shown_host = "localhost" if host in {"127.0.0.1", "0.0.0.0"} else host  # noqa: S104  # nosec B104
        self.stdout.write(f"Buzón is running at http://{shown_host}:{port}/  (data in {settings.DATA_DIR})")
        if first_run.needs_setup():
            self.stdout.write(f"Create the first administrator: open http://{shown_host}:{port}{first_run.setup_path()}")
        self.stdout.write("Stop with Ctrl-C.")
        self.stdout.flush()
        # Sized to the machine (buzon.core.run_plan): gunicorn workers and pipeline processes per core.
        children = [Child(name, buzon_argv(*args)) for name, args in run_plan.children(host, port)]
        # The supervisor only starts (fork + exec) and watches its children: it keeps no database
        # connection open for its whole life, nor hands one to a child.
        connections.close_all()
        Supervisor(children).run()

    def _serve_links_at(self, served: str) -> None:
        """Without BUZON_BASE_URL, links in mail name the address served here (the worker has no
        request to go by), and that name is one the web UI answers to."""
        if settings.BASE_URL_SET:
            return
        os.environ[public_url.SERVED_URL_ENV] = served
        settings.BASE_URL = served
        name = public_url.host_of(served)
        name = f"[{name}]" if ":" in name else name  # an IPv6 literal, as ALLOWED_HOSTS writes it
        if "BUZON_ALLOWED_HOSTS" not in os.environ and name not in settings.ALLOWED_HOSTS:
            os.environ["BUZON_ALLOWED_HOSTS"] = ",".join([*settings.ALLOWED_HOSTS, name])
