"""Links in mail work wherever Buzón runs: `buzon run --port P` without BUZON_BASE_URL writes links to
port P that its own web process answers; `buzon check` warns a production site that has not set its
public address."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from tests.support import live_run
from tests.support.ports import free_port
from tests.support.smtpd import SMTPServer

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

_QUEUE = """
from buzon.mailboxes.models import EmailAccount
from buzon.messages.outbox import queue_outgoing
EmailAccount.objects.create(
    email_address="novedades@example.test", display_name="Tienda", outgoing_enabled=True, default_outgoing=True,
    smtp_host="127.0.0.1", smtp_port={port}, smtp_security="none", smtp_auth=False, unsubscribe_link=True,
    track_opens=True, state="idle")
queue_outgoing(to="cliente@example.org", subject="Novedades", text="Hola", kind="bulk")
"""
_UNSUBSCRIBED = ("from buzon.outbound.models import Unsubscribe; "
                 "print(list(Unsubscribe.objects.values_list('address', flat=True)))")


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "REDIS_URL", "BUZON_", "DJANGO_SETTINGS_MODULE"))}
    env.update({"BUZON_DATA_DIR": str(data_dir), "BUZON_TASKS": "db", "PYTHONUNBUFFERED": "1",
                "BUZON_CA_FILE": os.environ.get("BUZON_CA_FILE", ""), **extra})
    return env


def _buzon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "buzon.core.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/healthz", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def test_run_on_another_port_writes_links_its_web_process_answers(tmp_path: Path, test_certs: Any) -> None:
    sink = SMTPServer(test_certs, mode="plain", require_auth=False).start()
    env = _env(tmp_path)
    port = free_port()
    try:
        live_run.migrated(tmp_path)
        _buzon(env, "shell", "-c", _QUEUE.format(port=sink.port))
        log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
        run = subprocess.Popen([sys.executable, "-m", "buzon.core.cli", "run", "--port", str(port), "--no-migrate"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while not sink.messages and time.monotonic() < deadline:
                time.sleep(0.3)
            assert sink.messages, (tmp_path / "run.log").read_text()
            mail = message_from_bytes(sink.messages[0].data, policy=default)
            unsubscribe = re.fullmatch(r"<(.+)>", str(mail["List-Unsubscribe"]))
            assert unsubscribe is not None
            pixel = re.search(r'<img src="([^"]+)"', mail.get_body(("html",)).get_content())  # type: ignore[union-attr]
            assert pixel is not None
            for link in (unsubscribe.group(1), pixel.group(1)):
                assert link.startswith(f"http://localhost:{port}/"), link
            # The worker may send before the web process listens (they start side by side).
            while not _answers(port) and time.monotonic() < deadline:
                time.sleep(0.3)
            with urllib.request.urlopen(pixel.group(1), timeout=20) as response:  # noqa: S310
                assert response.status == 200 and response.headers["Content-Type"] == "image/gif"
            one_click = urllib.request.Request(unsubscribe.group(1), data=b"List-Unsubscribe=One-Click",
                                               method="POST")
            with urllib.request.urlopen(one_click, timeout=20) as response:  # noqa: S310
                assert response.status == 200
            # the site's missing public address is said once, naming the port it runs on
            said = (tmp_path / "run.log").read_text()
            assert said.count("buzon.W001") == 1, said
            assert f"start with http://localhost:{port} or" in said and "localhost:8000" not in said, said
        finally:
            os.killpg(run.pid, 15)
            run.wait(30)
            log.close()
        assert "cliente@example.org" in _buzon(env, "shell", "-c", _UNSUBSCRIBED).stdout
    finally:
        sink.stop()


@pytest.mark.parametrize(("extra", "warned"), [
    ({}, True),  # not DEBUG: a production site
    ({"BUZON_DEBUG": "1", "BUZON_ALLOWED_HOSTS": "buzon.example.com"}, True),  # reached by another name
    ({"BUZON_DEBUG": "1"}, False),  # a developer's own machine
    ({"BUZON_BASE_URL": "https://buzon.example.com"}, False),
])
def test_check_warns_a_site_without_its_public_address(tmp_path: Path, extra: dict[str, str], warned: bool) -> None:
    done = _buzon(_env(tmp_path, **extra), "check")
    assert ("buzon.W001" in done.stderr) is warned, done.stderr
    if warned:
        assert "BUZON_BASE_URL" in done.stderr
