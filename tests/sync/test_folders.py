"""Folders with names beyond ASCII: sent to the server in modified UTF-7, kept and shown as named."""

from __future__ import annotations

import pytest

from buzon.sync.models import RawMessage
from tests.sync.helpers import make_account, make_mail, sync

pytestmark = pytest.mark.django_db

NAMES = ["Facturación", "Входящие", "R&D ✓"]


def test_folders_named_in_any_script_sync_under_their_real_names(dovecot):
    account = make_account(dovecot, folders=["INBOX", *NAMES])
    for index, name in enumerate(NAMES):
        dovecot.create_folder(account.email_address, name)  # doveadm takes the name in UTF-8
        on_disk = [path for path in dovecot.maildir(account.email_address).glob(".*") if path.is_dir()
                   and path.name not in (".", "..")]
        folder = max(on_disk, key=lambda path: path.stat().st_mtime).name[1:]  # as Dovecot encoded it
        assert folder != name  # the server's own name is modified UTF-7, not what the user typed
        dovecot.deliver(account.email_address, make_mail(index, subject=f"in {name}"), folder=folder)
    sync(account)
    account.refresh_from_db()
    assert account.last_error == ""
    got = dict(RawMessage.objects.filter(account=account).values_list("folder", "subject"))
    assert got == {name: f"in {name}" for name in NAMES}
