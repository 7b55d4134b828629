"""A real Dovecot (IMAP, IMAPS, POP3, POP3S, STARTTLS) on free loopback ports, for tests and benches.

Users are added while it runs (passwd-file is re-read on change); mail is delivered by writing
files into Maildir/new, which Dovecot notices through inotify (IDLE sees it within ~0.5 s).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.certs import TestCerts, make_certs
from tests.support.ports import free_port, wait_for_port

CONFIG = """
base_dir = {dir}/run
state_dir = {dir}/run/state
log_path = {dir}/run/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 0
auth_failure_delay = 0
login_trusted_networks =
mail_location = maildir:~/Maildir
first_valid_uid = 0
mailbox_idle_check_interval = 1 secs
default_process_limit = 2000
default_client_limit = 4000
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/users.d/%u
}}
userdb {{
  driver = passwd-file
  args = {dir}/users.d/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
service imap-login {{
  chroot =
  process_min_avail = 2
  service_count = 0
  client_limit = 2000
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No auth penalty: after a failed login Dovecot otherwise delays every login from 127.0.0.1 by
  # seconds, so a wrong-password test would slow whichever test logs in next (auth process cannot
  # reach this socket, which turns the penalty off).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
  client_limit = 7000
}}
service auth {{
  client_limit = 7000
}}
"""


def available() -> bool:
    return shutil.which("dovecot") is not None and Path("/usr/lib/dovecot/imap").exists() and \
        Path("/usr/lib/dovecot/pop3").exists()


class Dovecot:
    def __init__(self, directory: Path | None = None, certs: TestCerts | None = None) -> None:
        self.dir = Path(directory or tempfile.mkdtemp(prefix="buzon-dovecot-"))
        self.dir.chmod(0o755)
        self.certs = certs or make_certs(self.dir / "certs")
        shutil.copy(self.certs.cert_file, self.dir / "cert.pem")
        shutil.copy(self.certs.key_file, self.dir / "key.pem")
        self.ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(CONFIG.format(dir=self.dir, **self.ports))
        (self.dir / "users").write_text("")
        (self.dir / "users.d").mkdir(exist_ok=True)
        (self.dir / "mail").mkdir(exist_ok=True)
        self.uid = pwd.getpwnam("dovecot").pw_uid
        self.gid = grp.getgrnam("dovecot").gr_gid
        os.chown(self.dir / "mail", self.uid, self.gid)
        self.users: dict[str, str] = {}

    @property
    def imap_port(self) -> int:
        return self.ports["imap"]

    @property
    def imaps_port(self) -> int:
        return self.ports["imaps"]

    @property
    def pop3_port(self) -> int:
        return self.ports["pop3"]

    @property
    def pop3s_port(self) -> int:
        return self.ports["pop3s"]

    @property
    def ca_file(self) -> Path:
        return self.certs.ca_file

    def start(self) -> Dovecot:
        (self.dir / "run").mkdir(exist_ok=True)
        subprocess.run(["dovecot", "-c", str(self.conf)], check=True)
        for port in self.ports.values():
            wait_for_port(port)
        return self

    def stop(self) -> None:
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], check=False, capture_output=True)
        pid_file = self.dir / "run" / "master.pid"
        deadline = time.monotonic() + 10
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # Users and mail
    def add_user(self, name: str | None = None, password: str = "secret") -> str:
        address = name or f"user-{uuid.uuid4().hex[:10]}@example.test"
        home = self.dir / "mail" / address
        self.users[address] = password
        line = f"{address}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{home}\n"
        with (self.dir / "users").open("a") as users:
            users.write(line)
        # One file per user: Dovecot re-reads a passwd-file at most once a second, so a user added
        # to a shared file right after another login could not log in until the next second.
        (self.dir / "users.d" / address).write_text(line)
        for sub in ("cur", "new", "tmp"):
            (home / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
        for path in [home, *home.rglob("*")]:
            os.chown(path, self.uid, self.gid)
        return address

    def maildir(self, address: str, folder: str = "INBOX") -> Path:
        base = self.dir / "mail" / address / "Maildir"
        return base if folder == "INBOX" else base / ("." + folder.replace("/", "."))

    def deliver(self, address: str, raw: bytes, folder: str = "INBOX", seen: bool = False) -> Path:
        """Drop a message into the mailbox the way an MTA's local delivery does."""
        box = self.maildir(address, folder)
        if not (box / "cur").exists():
            self.create_folder(address, folder)
        name = f"{time.time_ns()}.{uuid.uuid4().hex}.buzon-test"
        tmp = box / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self.uid, self.gid)
        target = box / "cur" / f"{name}:2,S" if seen else box / "new" / name
        os.rename(tmp, target)
        return target

    def create_folder(self, address: str, folder: str) -> None:
        self.doveadm("mailbox", "create", "-u", address, folder)

    def delete_folder(self, address: str, folder: str) -> None:
        self.doveadm("mailbox", "delete", "-u", address, folder)

    def doveadm(self, *args: str) -> str:
        result = subprocess.run(["doveadm", "-c", str(self.conf), *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def message_count(self, address: str, folder: str = "INBOX") -> int:
        out = self.doveadm("mailbox", "status", "-u", address, "messages", folder)
        return int(out.strip().split("=")[1])

    def log(self) -> str:
        path = self.dir / "run" / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""
