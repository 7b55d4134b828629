"""QRESYNC (RFC 7162): a folder reopened with what was last seen answers only what changed."""

from __future__ import annotations

import pytest

from buzon.sync.imap_conn import ImapConnection
from buzon.sync.imap_parse import parse_select, uid_set_size
from buzon.sync.models import RawMessage
from tests.sync.helpers import make_account, make_mail, sync

pytestmark = pytest.mark.django_db


def test_reopened_folder_brings_changed_flags_and_new_mail_without_asking_twice(dovecot, monkeypatch):
    account = make_account(dovecot)
    for i in range(4):
        dovecot.deliver(account.email_address, make_mail(i))
    sync(account)
    user = account.email_address
    dovecot.doveadm("flags", "add", "-u", user, "\\Flagged", "mailbox", "INBOX", "uid", "2")
    dovecot.doveadm("expunge", "-u", user, "mailbox", "INBOX", "uid", "3")
    dovecot.deliver(user, make_mail(9))
    commands: list[str] = []
    examine, fetch = ImapConnection.examine, ImapConnection.uid_fetch

    async def spy_examine(self, folder, since=None):
        status = await examine(self, folder, since)
        commands.append(f"EXAMINE qresync={self.qresync} since={since} vanished={status.vanished}")
        return status

    async def spy_fetch(self, uids, items, modifier=""):
        commands.append(f"FETCH {items} {modifier}".strip())
        return await fetch(self, uids, items, modifier)

    monkeypatch.setattr(ImapConnection, "examine", spy_examine)
    monkeypatch.setattr(ImapConnection, "uid_fetch", spy_fetch)
    sync(account)
    assert commands[0].startswith("EXAMINE qresync=True since=(") and commands[0].endswith("vanished=1")
    assert not any("CHANGEDSINCE" in command for command in commands)  # QRESYNC said it already
    rows = {row.uid: row for row in RawMessage.objects.filter(account=account)}
    assert sorted(rows) == [1, 2, 3, 4, 5]  # expunged on the server, still kept here
    assert "\\Flagged" in rows[2].flags and "\\Flagged" not in rows[1].flags
    assert rows[5].subject == "Message 9"


def test_examine_answer_with_vanished_and_changed_flags():
    status = parse_select([b"OK [UIDVALIDITY 3] ok", b"OK [HIGHESTMODSEQ 90] h", b"5 EXISTS",
                           b"VANISHED (EARLIER) 3:5,9", b"2 FETCH (UID 4 FLAGS (\\Seen) MODSEQ (88))", b"done"])
    assert status.vanished == 4 and [(item.uid, item.flags, item.modseq) for item in status.changed] == [
        (4, ["\\Seen"], 88)]
    assert uid_set_size("1:3,7,10:9") == 6
