"""Sign-in protection: lockout after repeated failures, the TOTP second factor, security headers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from buzon.web.security import content_security_policy

pytestmark = pytest.mark.django_db


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def _unthrottle(device: TOTPDevice) -> None:
    """django-otp makes the next try wait after a wrong code (1 s, then doubling); tests move on."""
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()


def test_repeated_wrong_passwords_lock_out_that_username_from_that_address(settings):
    User.objects.create_user("marta", password="right-pw-123")
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/login/", {"username": "marta", "password": "nope"}).status_code == 200
    locked = client.post("/login/", {"username": "marta", "password": "nope"}, HTTP_ACCEPT_LANGUAGE="es")
    assert locked.status_code == 429 and "Demasiados" in locked.content.decode()
    # Even the right password is refused while locked out...
    assert client.post("/login/", {"username": "marta", "password": "right-pw-123"}).status_code == 429
    assert "_auth_user_id" not in client.session
    # ...but only for that address: a colleague elsewhere is not locked out by the guesser.
    other = Client(REMOTE_ADDR="198.51.100.9")
    assert other.post("/login/", {"username": "marta", "password": "right-pw-123"}).status_code == 302


def test_a_success_before_the_limit_resets_the_count(settings):
    User.objects.create_user("pablo", password="right-pw-123")
    client = Client(REMOTE_ADDR="203.0.113.8")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/login/", {"username": "pablo", "password": "nope"})
    assert client.post("/login/", {"username": "pablo", "password": "right-pw-123"}).status_code == 302
    client.post("/logout/")
    assert client.post("/login/", {"username": "pablo", "password": "nope"}).status_code == 200


def test_administrator_enrols_totp_and_is_asked_for_a_code_at_the_next_sign_in():
    User.objects.create_user("jefa", password="jefa-pw-123", is_staff=True)
    client = Client()
    assert client.post("/login/", {"username": "jefa", "password": "jefa-pw-123"}).status_code == 302
    page = client.get("/settings/two-factor/").content.decode()
    assert "<svg" in page and 'id="totp-secret"' in page and "http" not in page.split("<svg", 1)[1][:200]
    device = TOTPDevice.objects.get(user__username="jefa")
    assert not device.confirmed
    assert "not right" in client.post("/settings/two-factor/", {"code": "000000"}).content.decode()
    _unthrottle(device)
    enrolled = client.post("/settings/two-factor/", {"code": _code(device)})  # shows the recovery codes once
    assert enrolled.status_code == 200 and 'id="recovery-codes"' in enrolled.content.decode()
    device.refresh_from_db()
    assert device.confirmed

    client.post("/logout/")
    signed = client.post("/login/", {"username": "jefa", "password": "jefa-pw-123", "next": "/inbox/"})
    assert signed.status_code == 302
    gate = client.get("/inbox/")
    assert gate.status_code == 302 and gate["Location"].startswith("/login/verify/?next=/inbox/")
    assert client.get("/api/v1/messages/").status_code == 403  # the session does not reach the API either
    assert client.get("/login/verify/").status_code == 200
    assert client.post("/login/verify/", {"code": "000000", "next": "/inbox/"}).status_code == 200
    _unthrottle(device)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)  # the enrolment code's time step, used again
    device.refresh_from_db()
    verified = client.post("/login/verify/", {"code": _code(device), "next": "https://evil.test/"})
    assert verified.status_code == 302 and verified["Location"] == "/"  # never an outside address
    assert client.get("/inbox/").status_code == 200


def test_users_without_a_device_are_not_asked_and_agents_cannot_enrol():
    User.objects.create_user("agente", password="agente-pw-123")
    client = Client()
    client.post("/login/", {"username": "agente", "password": "agente-pw-123"})
    assert client.get("/inbox/").status_code == 200
    assert client.get("/settings/two-factor/").status_code == 403


def test_every_page_carries_a_policy_without_inline_script(client):
    response = client.get("/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "img-src 'self' data:;" in policy  # remote images only where the reader asked for them
    assert "https:" in content_security_policy(allow_remote_images=True)
    assert "<script>" not in response.content.decode()


@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True, SECURE_HSTS_SECONDS=31536000)
def test_behind_tls_cookies_are_secure_and_hsts_is_sent():
    User.objects.create_user("tls", password="tls-pw-123")
    client = Client()
    response = client.post("/login/", {"username": "tls", "password": "tls-pw-123"}, secure=True)
    assert response.cookies["sessionid"]["secure"] and response.cookies["sessionid"]["httponly"]
    assert client.get("/login/", secure=True)["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in client.get("/login/")  # never over plain HTTP


def test_settings_follow_the_environment(monkeypatch):
    import importlib

    import buzon.settings as module

    monkeypatch.setenv("BUZON_SECURE_COOKIES", "1")
    monkeypatch.setenv("BUZON_BEHIND_PROXY", "1")
    try:
        reloaded = importlib.reload(module)
        assert reloaded.SESSION_COOKIE_SECURE and reloaded.CSRF_COOKIE_SECURE
        assert reloaded.SECURE_HSTS_SECONDS == 31536000
        assert reloaded.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    finally:
        monkeypatch.delenv("BUZON_SECURE_COOKIES")
        monkeypatch.delenv("BUZON_BEHIND_PROXY")
        importlib.reload(module)
