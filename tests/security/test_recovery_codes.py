"""TOTP recovery codes: made at enrolment and shown once, kept hashed, good for one sign-in each,
made anew on request (the old ones stop working); enrolling, removing, regenerating and using a
code are in the audit log (UI and API) without any code in it."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from buzon.mailboxes.models import AuditEntry
from buzon.web.models import RecoveryCode, RecoveryCodeDevice

pytestmark = pytest.mark.django_db
CODE_RE = re.compile(r'class="recovery-code">([A-Z0-9-]+)<')


def _totp(user: User) -> str:
    device = TOTPDevice.objects.get(user=user)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1, throttling_failure_count=0,
                                                   throttling_failure_timestamp=None)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def _unthrottle(user: User) -> None:
    RecoveryCodeDevice.objects.filter(user=user).update(throttling_failure_count=0, throttling_failure_timestamp=None)


def _enrolled() -> tuple[User, Client, list[str]]:
    user = User.objects.create_user("jefa", password="jefa-pw-123", is_staff=True)
    client = Client()
    client.post("/login/", {"username": "jefa", "password": "jefa-pw-123"})
    client.get("/settings/two-factor/")
    page = client.post("/settings/two-factor/", {"code": _totp(user)})
    assert page.status_code == 200
    codes = CODE_RE.findall(page.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    return user, client, codes


def _sign_in(password: str = "jefa-pw-123") -> Client:
    client = Client()
    assert client.post("/login/", {"username": "jefa", "password": password}).status_code == 302
    assert client.get("/inbox/")["Location"].startswith("/login/verify/")
    return client


def test_codes_are_shown_once_and_kept_only_hashed():
    user, client, codes = _enrolled()
    stored = list(RecoveryCode.objects.values_list("code_hash", flat=True))
    assert sorted(stored) == sorted(hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes)
    dump = json.dumps(list(RecoveryCode.objects.values()) + list(RecoveryCodeDevice.objects.values()), default=str)
    assert not any(code in dump or code.replace("-", "") in dump for code in codes)
    again = client.get("/settings/two-factor/").content.decode()
    assert 'id="recovery-codes"' not in again and not any(code in again for code in codes)
    assert "10 unused recovery codes left" in again


def test_a_recovery_code_signs_in_once():
    user, _client, codes = _enrolled()
    first = _sign_in()
    done = first.post("/login/verify/", {"code": codes[0].lower().replace("-", " "), "next": "/inbox/"})
    assert done.status_code == 302 and done["Location"] == "/inbox/"
    assert first.get("/inbox/").status_code == 200
    second = _sign_in()
    assert "not right" in second.post("/login/verify/", {"code": codes[0]}).content.decode()  # used up
    assert second.get("/inbox/").status_code == 302
    _unthrottle(user)
    assert second.post("/login/verify/", {"code": codes[1]}).status_code == 302
    assert RecoveryCodeDevice.objects.get(user=user).unused() == 8
    used = AuditEntry.objects.filter(target_type="user", action="used").order_by("id")
    assert [e.changes for e in used] == [[{"field": "recovery_codes", "old": 10, "new": 9}],
                                         [{"field": "recovery_codes", "old": 9, "new": 8}]]
    assert all(e.actor_id == user.pk and e.target_id == user.pk for e in used)


def test_wrong_recovery_codes_are_throttled_apart_from_the_authenticator():
    user, _client, codes = _enrolled()
    client = _sign_in()
    assert "not right" in client.post("/login/verify/", {"code": "AAAAA-AAAAA"}).content.decode()
    device = RecoveryCodeDevice.objects.get(user=user)
    assert device.throttling_failure_count == 1
    assert TOTPDevice.objects.get(user=user).throttling_failure_count == 0
    assert "not right" in client.post("/login/verify/", {"code": codes[0]}).content.decode()  # too soon
    assert RecoveryCodeDevice.objects.get(user=user).unused() == 10  # the throttled try used nothing up


def test_new_codes_replace_the_old_ones():
    user, client, old = _enrolled()
    page = client.post("/settings/two-factor/", {"code": _totp(user), "action": "regenerate"})
    new = CODE_RE.findall(page.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    signing = _sign_in()
    assert "not right" in signing.post("/login/verify/", {"code": old[2]}).content.decode()
    _unthrottle(user)
    assert signing.post("/login/verify/", {"code": new[2]}).status_code == 302
    changed = AuditEntry.objects.get(target_type="user", action="changed")
    assert changed.changes == [{"field": "recovery_codes", "old": 10, "new": 10}]


def test_turning_off_removes_the_codes_and_is_logged_without_secrets():
    user, client, codes = _enrolled()
    assert client.post("/settings/two-factor/", {"code": codes[3], "action": "off"}).status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists() and not RecoveryCode.objects.exists()
    assert _plain_sign_in().get("/inbox/").status_code == 200  # no second step any more
    actions = list(AuditEntry.objects.filter(target_type="user").order_by("id").values_list("action", flat=True))
    assert actions == ["created", "used", "deleted"]
    admin = Client()
    admin.force_login(User.objects.create_user("root", is_staff=True))
    log = admin.get("/settings/audit/?type=user").content.decode()
    assert "two-step sign-in (authenticator app)" in log and "unused recovery codes" in log and "jefa" in log
    api = APIClient()
    api.force_authenticate(User.objects.get(username="root"))
    body = api.get("/api/v1/audit/?type=user").content.decode()
    assert '"target_type":"user"' in body.replace(" ", "") and "deleted" in body
    everything = log + body + json.dumps(list(AuditEntry.objects.values("changes")))
    assert not any(code in everything or code.replace("-", "") in everything for code in codes)


def _plain_sign_in() -> Client:
    client = Client()
    assert client.post("/login/", {"username": "jefa", "password": "jefa-pw-123"}).status_code == 302
    return client
