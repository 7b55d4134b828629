"""The ground everything stands on: settings, secrets, real servers."""

from __future__ import annotations

import imaplib
import ssl

import pytest
from django.conf import settings

from buzon.core import crypto
from buzon.core.config import kept_secret


def test_secret_kept_once(tmp_path):
    first = kept_secret(tmp_path, "k", lambda: "one")
    second = kept_secret(tmp_path, "k", lambda: "two")
    assert first == second == "one"
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600


def test_encryption_round_trip_and_rotation(settings):
    from cryptography.fernet import Fernet

    token = crypto.encrypt("pässwörd")
    assert "pässwörd" not in token
    assert crypto.decrypt(token) == "pässwörd"
    new_key = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new_key, *settings.FERNET_KEYS]
    rotated = crypto.rotate(token)
    settings.FERNET_KEYS = [new_key]
    assert crypto.decrypt(rotated) == "pässwörd"
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(token)


def test_dovecot_fixture_serves_imap_over_tls(dovecot):
    address = dovecot.add_user()
    dovecot.deliver(address, b"Subject: hello\r\n\r\nbody\r\n")
    context = ssl.create_default_context(cafile=settings.TLS_CA_FILE)
    with imaplib.IMAP4_SSL("localhost", dovecot.imaps_port, ssl_context=context) as client:
        client.login(address, "secret")
        assert client.select("INBOX") == ("OK", [b"1"])
