import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.core.validators import validate_email
from django.urls import get_resolver
from django.utils import translation
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from buzon.core import config, forking, heartbeat, run_plan
from buzon.core.models import ProcessKind
from buzon.wsgi import application


# gunicorn's hooks. The master forks its workers at start and again whenever one dies: it runs no
# thread and keeps no database connection (buzon.core.forking). Each worker has its own heartbeat,
# started once it is a worker, and says goodbye when it leaves.
def _pre_fork(_server: Any, _worker: Any) -> None:
    forking.before_fork("gunicorn's master")


def _warm() -> None:
    """What each worker would otherwise do at its first request, done once by the master before it
    forks them, so they share it: the URLs' reverse table, one per language, with each language's
    translations loaded, and the e-mail validator's lazily compiled patterns (0.1 s of CPU a worker
    for the first language, measured; the URLconf and every view it imports are already loaded by
    the system checks, unless they are skipped). It opens no database connection and starts no
    thread, so the fork stays safe (buzon.core.forking)."""
    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018  # the property imports the URLconf and with it every view
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            resolver.reverse_dict  # noqa: B018  # the property builds the active language's reverse table
    validate_email("warm-up@example.com")  # compiles its lazily compiled patterns


def _post_worker_init(_worker: Any) -> None:
    heartbeat.start(ProcessKind.WEB)


def _worker_exit(_server: Any, _worker: Any) -> None:
    # Leaving already: on Ctrl-C the worker gets SIGINT from the terminal and then SIGQUIT from the
    # master, and a second signal raised SystemExit in the middle of the goodbye's database write
    # (seen when the database was busy). The master's SIGKILL after graceful_timeout still bounds it.
    for number in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    heartbeat.stop()


class Worker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, quitting once.

    Ctrl-C reaches the whole process group: each worker gets SIGINT from the terminal and SIGQUIT
    from its master at the same instant. The second handler ran inside the first one's
    ThreadPoolExecutor.shutdown, whose lock is not reentrant, and the worker hung until it was killed,
    without its goodbye (seen under load)."""

    quitting = False

    def handle_quit(self, sig: int, frame: Any) -> None:
        if self.quitting:
            return
        self.quitting = True
        super().handle_quit(sig, frame)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return application


class Command(BaseCommand):
    help = "Serve the web UI and the API (gunicorn, threaded workers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=config.env_str("BUZON_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=config.env_int("BUZON_PORT", 8000))
        parser.add_argument("--workers", type=int, default=run_plan.web_workers(),
                            help="gunicorn workers (default: BUZON_WEB_WORKERS, or one per core, 2 to 4)")
        parser.add_argument("--threads", type=int, default=config.env_int("BUZON_WEB_THREADS", 4))

    def handle(self, *args: Any, **options: Any) -> None:
        _warm()
        _Gunicorn(
            {
                "bind": f"{options['host']}:{options['port']}",
                "workers": options["workers"],
                "threads": options["threads"],
                "worker_class": f"{__name__}.Worker",
                "accesslog": "-" if options["verbosity"] > 1 else None,
                "graceful_timeout": 10,
                "timeout": 120,
                # one control socket per home directory: several `buzon web` on one host would fight over it
                "control_socket_disable": True,
                "pre_fork": _pre_fork,
                "post_worker_init": _post_worker_init,
                "worker_exit": _worker_exit,
            }
        ).run()
