"""django-post-office as a peer of Buzón's outbound queue, in its best documented configuration:
mail queued with `mail.send_many`, sent by `send_queued_mail` with THREADS_PER_PROCESS equal to
the SMTP connections Buzón opens (one connection per thread, kept for the batch), one batch for the
whole queue, SQLite with Buzón's durability (WAL, synchronous=NORMAL). No DKIM: it has none.

Runs in the peers' own venv (bench/peers.py installs Django and django-post-office there, never
into Buzón's). Run: python bench/peer_post_office.py PORT N THREADS   prints JSON {"seconds", "sent"}.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(port: int, n: int, threads: int) -> None:
    import django
    from django.conf import settings

    work = Path(tempfile.mkdtemp(prefix="buzon-bench-post-office-"))
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "post_office"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(work / "db.sqlite3"),
                               "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}}},
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1", EMAIL_PORT=port,
        POST_OFFICE={"BATCH_SIZE": n, "THREADS_PER_PROCESS": threads, "LOG_LEVEL": 0, "MESSAGE_ID_ENABLED": True},
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}], USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField")
    django.setup()
    from django.core.management import call_command
    from post_office import mail
    from post_office.models import Email

    try:
        call_command("migrate", verbosity=0)
        text = sys.stdin.read()
        mail.send_many([{"sender": "pedidos@tienda-norte.example", "recipients": [f"cliente{i}@example.test"],
                         "subject": f"post-office {i}", "message": text} for i in range(n)])
        started = time.perf_counter()
        call_command("send_queued_mail", processes=1, verbosity=0)
        seconds = time.perf_counter() - started
        print(json.dumps({"seconds": seconds, "sent": Email.objects.filter(status=0).count()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # its queue's database, one a run


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
