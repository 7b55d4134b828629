"""OAuth 2.0 sign-in end to end: a local identity provider (authorize, token, introspection endpoints),
a Dovecot whose passdb is `driver = oauth2` asking that provider, and Buzón's pages driven by the
test client (the provider's consent page is followed the way a browser follows a redirect).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from buzon.core import crypto
from buzon.mailboxes import secrets as stored_secrets
from buzon.mailboxes.connections import open_pop3
from buzon.mailboxes.endpoints import incoming_settings
from buzon.mailboxes.models import AccountState, EmailAccount
from buzon.mailboxes.oauth import SignInRevoked, access_token
from buzon.mailboxes.probe import probe_account
from tests.support import dovecot as dovecot_support
from tests.support.services import require

pytestmark = pytest.mark.django_db
CLIENT_ID, CLIENT_SECRET = "buzon-test-client", "s3cret-of-the-client"


class IdentityProvider:
    """Authorization server + token introspection, as Google's or Microsoft's would behave."""

    def __init__(self) -> None:
        self.codes: dict[str, dict[str, str]] = {}  # code -> user, challenge, redirect_uri
        self.access: dict[str, str] = {}  # active access token -> user
        self.refresh: dict[str, str] = {}  # valid refresh token -> user
        self.grants: list[str] = []
        self.expires_in = 3600
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # the consent page: the user agrees at once
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                assert query["client_id"] == CLIENT_ID and query["code_challenge_method"] == "S256"
                code = secrets.token_urlsafe(16)
                outer.codes[code] = {"user": query["login_hint"], "challenge": query["code_challenge"],
                                     "redirect_uri": query["redirect_uri"]}
                self.send_response(302)
                self.send_header("Location", f"{query['redirect_uri']}?code={code}&state={query['state']}")
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                if self.path == "/introspect":  # asked by Dovecot's oauth2 passdb
                    user = outer.access.get(form.get("token", ""))
                    self._json(200, {"active": True, "username": user} if user else {"active": False})
                    return
                if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                    self._json(401, {"error": "invalid_client"})
                    return
                outer.grants.append(form["grant_type"])
                if form["grant_type"] == "authorization_code":
                    started = outer.codes.pop(form.get("code", ""), None)
                    verifier = form.get("code_verifier", "").encode()
                    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
                    if started is None or started["challenge"] != challenge or \
                            started["redirect_uri"] != form.get("redirect_uri"):
                        self._json(400, {"error": "invalid_grant"})
                        return
                    user = started["user"]
                else:
                    user = outer.refresh.get(form.get("refresh_token", ""))
                    if user is None:
                        self._json(400, {"error": "invalid_grant", "error_description": "Token has been revoked."})
                        return
                access, refresh = "at-" + secrets.token_urlsafe(16), "rt-" + secrets.token_urlsafe(16)
                outer.access[access] = user
                outer.refresh[refresh] = user
                self._json(200, {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                                 "expires_in": outer.expires_in})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def revoke(self, user: str) -> None:
        for table in (self.access, self.refresh):
            for token in [t for t, u in table.items() if u == user]:
                del table[token]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def oauth_dovecot(idp: IdentityProvider, test_certs) -> Iterator[dovecot_support.Dovecot]:
    """A second Dovecot that accepts only OAuth bearer tokens, checked at the provider's introspection URL."""
    require(dovecot_support.available(), "Dovecot is not installed")
    server = dovecot_support.Dovecot(certs=test_certs)
    ext = server.dir / "oauth2.conf.ext"
    ext.write_text(f"introspection_mode = post\nintrospection_url = {idp.url}/introspect\n"
                   "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
                   "force_introspection = yes\n")
    conf = server.conf.read_text()
    conf = conf.replace("auth_mechanisms = plain login", "auth_mechanisms = xoauth2 oauthbearer")
    passwd = f"passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {server.dir}/users.d/%u\n}}"
    assert passwd in conf
    conf = conf.replace(passwd, f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {ext}\n}}")
    server.conf.write_text(conf)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def provider_settings(settings, idp: IdentityProvider) -> None:
    settings.OAUTH_PROVIDERS = {"testidp": {
        "name": "Test IdP", "authorize_url": f"{idp.url}/authorize", "token_url": f"{idp.url}/token",
        "scopes": ["mail"], "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
    }}


@pytest.fixture(autouse=True)
def domain(db, oauth_dovecot):
    from buzon.mailboxes.models import EmailDomain

    return EmailDomain.objects.create(domain_name="example.test", incoming_host="localhost",
                                      incoming_port=oauth_dovecot.imaps_port, incoming_security="ssl")


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_user("admin", "a@example.test", "pw", is_staff=True))
    return client


def _account(server: dovecot_support.Dovecot, protocol: str = "imap") -> EmailAccount:
    address = server.add_user()
    port = server.imaps_port if protocol == "imap" else server.pop3s_port
    return EmailAccount.objects.create(email_address=address, incoming_enabled=True, incoming_protocol=protocol,
                                       incoming_host="localhost", incoming_port=port, incoming_security="ssl",
                                       awaiting_password=True, state=AccountState.AWAITING_PASSWORD)


def _sign_in(staff: Client, account: EmailAccount) -> Any:
    start = staff.get(f"/settings/email/accounts/{account.pk}/oauth/testidp/")
    assert start.status_code == 302 and start["Location"].startswith("http://127.0.0.1:")
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["login_hint"] == [account.email_address]
    # The browser goes to the provider, which sends it back to Buzón's callback.
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(start["Location"])
    back = urlsplit(redirect.value.headers["Location"])
    return staff.get(back.path, {k: v[0] for k, v in parse_qs(back.query).items()})


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_sign_in_with_pkce_stores_encrypted_tokens_and_logs_in(staff, idp, oauth_dovecot, provider_settings):
    account = _account(oauth_dovecot)
    form = staff.get(f"/settings/email/accounts/{account.pk}/edit/").content.decode()
    assert f'href="/settings/email/accounts/{account.pk}/oauth/testidp/"' in form  # started from the form
    done = _sign_in(staff, account)
    assert done.status_code == 302 and done["Location"] == f"/settings/email/accounts/{account.pk}/", \
        [str(m) for m in done.wsgi_request._messages]
    account.refresh_from_db()
    assert account.oauth_provider == "testidp" and account.state == AccountState.IDLE
    assert not account.awaiting_password and account.password_encrypted == ""
    access = crypto.decrypt(account.oauth_access_token_encrypted)
    refresh = crypto.decrypt(account.oauth_refresh_token_encrypted)
    assert idp.access[access] == account.email_address and idp.refresh[refresh] == account.email_address
    assert access not in account.oauth_access_token_encrypted  # encrypted at rest
    assert ("mailboxes.EmailAccount", "oauth_refresh_token_encrypted") in stored_secrets.registered()
    assert ("mailboxes.EmailAccount", "oauth_access_token_encrypted") in stored_secrets.registered()
    report = probe_account(account, outgoing=False, timeout=5)
    assert report.ok, report.incoming.error  # XOAUTH2 against Dovecot's oauth2 passdb
    from buzon.mailboxes.models import AuditEntry

    signed = AuditEntry.objects.filter(target_type="account", target_id=account.pk, action="changed").first()
    assert signed is not None and signed.actor_name == "admin"
    assert {"field": "oauth_refresh_token_encrypted", "secret": True} in signed.changes
    assert refresh not in str(signed.changes) and access not in str(signed.changes)


def test_forged_or_replayed_state_is_refused(staff, idp, oauth_dovecot, provider_settings):
    account = _account(oauth_dovecot)
    forged = staff.get("/settings/email/oauth/callback/", {"code": "x", "state": "not-one-we-made"})
    assert forged.status_code == 302 and forged["Location"] == "/settings/email/accounts/"
    start = staff.get(f"/settings/email/accounts/{account.pk}/oauth/testidp/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    stolen_code = "code-without-our-verifier"
    refused = staff.get("/settings/email/oauth/callback/", {"code": stolen_code, "state": state})
    assert refused.status_code == 302
    account.refresh_from_db()
    assert account.oauth_access_token_encrypted == "" and account.awaiting_password
    again = staff.get("/settings/email/oauth/callback/", {"code": stolen_code, "state": state})
    assert again["Location"] == "/settings/email/accounts/"  # a state is good once


def _signed_in(idp: IdentityProvider, server: dovecot_support.Dovecot, protocol: str = "imap",
               expires_in: int = 3600) -> EmailAccount:
    account = _account(server, protocol)
    access, refresh = "at-" + secrets.token_urlsafe(8), "rt-" + secrets.token_urlsafe(8)
    idp.access[access] = idp.refresh[refresh] = account.email_address
    account.oauth_provider = "testidp"
    account.oauth_access_token_encrypted = crypto.encrypt(access)
    account.oauth_refresh_token_encrypted = crypto.encrypt(refresh)
    account.oauth_expires_at = timezone.now() + timedelta(seconds=expires_in)
    account.awaiting_password, account.state = False, AccountState.IDLE
    account.save()
    return account


def test_token_refreshed_before_expiry_and_pop3_logs_in(idp, oauth_dovecot, provider_settings):
    account = _signed_in(idp, oauth_dovecot, "pop3", expires_in=60)  # inside the 5-minute margin
    old = crypto.decrypt(account.oauth_access_token_encrypted)
    idp.access.pop(old)  # the provider already considers it expired
    grants = len(idp.grants)
    from buzon.mailboxes.models import AuditEntry

    logged = AuditEntry.objects.count()
    client = open_pop3(incoming_settings(account), timeout=5)
    client.quit()
    assert idp.grants[grants:] == ["refresh_token"]
    assert AuditEntry.objects.count() == logged  # a routine refresh is not a settings change
    account.refresh_from_db()
    assert crypto.decrypt(account.oauth_access_token_encrypted) != old
    assert account.oauth_expires_at > timezone.now() + timedelta(minutes=50)
    assert access_token(account) == crypto.decrypt(account.oauth_access_token_encrypted)
    assert idp.grants[grants:] == ["refresh_token"]  # a fresh token is not refreshed again


def test_revoked_consent_gives_a_clear_state_and_message(idp, oauth_dovecot, provider_settings):
    account = _signed_in(idp, oauth_dovecot, expires_in=0)
    idp.revoke(account.email_address)
    with pytest.raises(SignInRevoked) as raised:
        access_token(account)
    assert "sign in with the provider again" in raised.value.message()
    account.refresh_from_db()
    assert account.state == AccountState.SIGN_IN_REVOKED
    assert "consent was revoked" in account.last_error
    assert account.oauth_refresh_token_encrypted == "" and account.oauth_access_token_encrypted == ""
    report = probe_account(account, outgoing=False, timeout=5)
    assert report.incoming.error is not None and report.incoming.error.code == "auth"
    assert "sign in with the provider again" in report.incoming.error.message()


def test_smtp_sends_with_xoauth2_and_a_refused_token_is_a_login_error(idp, oauth_dovecot, provider_settings,
                                                                       test_certs):
    from aiosmtpd.smtp import AuthResult

    from buzon.mailboxes.connections import open_smtp
    from buzon.mailboxes.endpoints import smtp_settings
    from buzon.mailboxes.errors import AuthenticationFailed
    from tests.support.smtpd import SMTPServer

    server = SMTPServer(test_certs, mode="ssl")
    logins: list[str] = []

    async def auth_XOAUTH2(smtp: Any, args: list[str]) -> AuthResult:  # noqa: N802 - aiosmtpd's naming
        fields = dict(part.split("=", 1) for part in base64.b64decode(args[1]).decode().split("\x01") if "=" in part)
        user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        logins.append(user)
        return AuthResult(success=idp.access.get(token) == user, handled=False, auth_data=user)

    server.handler.auth_XOAUTH2 = auth_XOAUTH2  # type: ignore[attr-defined]
    server.start()
    try:
        account = _signed_in(idp, oauth_dovecot)
        account.outgoing_enabled, account.smtp_host, account.smtp_port = True, "localhost", server.port
        account.smtp_security, account.smtp_auth = "ssl", True
        account.save()
        client = open_smtp(smtp_settings(account), timeout=5)
        client.sendmail(account.email_address, ["x@example.org"], b"Subject: hi\r\n\r\nbody\r\n")
        client.quit()
        assert logins == [account.email_address] and len(server.messages) == 1
        idp.access.clear()  # the provider stops honouring the (unexpired) token
        with pytest.raises(AuthenticationFailed):
            open_smtp(smtp_settings(account), timeout=5)
    finally:
        server.stop()


def test_tokens_never_go_to_a_plain_http_token_endpoint_elsewhere(settings):
    from buzon.mailboxes import oauth

    settings.OAUTH_PROVIDERS = {"leaky": {"authorize_url": "https://idp.example.com/a",
                                          "token_url": "http://idp.example.com/token", "client_id": "c"}}
    with pytest.raises(oauth.OAuthError) as raised:
        oauth.exchange_code(oauth.providers()["leaky"], code="c", verifier="v", redirect_uri="https://b/")
    assert raised.value.code == "insecure_token_url"


def _new_account_form(server: dovecot_support.Dovecot, **extra: str) -> dict[str, str]:
    return {"email_address": server.add_user(), "incoming_enabled": "on", "incoming_protocol": "imap",
            "incoming_host": "localhost", "incoming_port": str(server.imaps_port), "incoming_security": "ssl",
            "default_incoming": "on", "sync_option": "all", "initial_sync_count": "250",
            "oauth_provider": "testidp", **extra}


def _consent(client: Client, start: Any) -> Any:
    """The browser at the provider, which sends it back to Buzón's callback."""
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(start["Location"])
    back = urlsplit(redirect.value.headers["Location"])
    return client.get(back.path, {k: v[0] for k, v in parse_qs(back.query).items()})


def test_a_new_account_signs_in_with_the_provider_from_the_form(staff, idp, oauth_dovecot, provider_settings):
    from buzon.sync.account import eligible_accounts

    page = staff.get("/settings/email/accounts/new/").content.decode()
    assert 'name="oauth_provider" value="testidp"' in page and 'form="account-form"' in page
    form = _new_account_form(oauth_dovecot)
    start = staff.post("/settings/email/accounts/new/", form)
    assert start.status_code == 302 and start["Location"].startswith(f"{idp.url}/authorize?"), start.content[:500]
    assert parse_qs(urlsplit(start["Location"]).query)["login_hint"] == [form["email_address"]]
    pending = EmailAccount.objects.get(email_address=form["email_address"])
    # Saved switched off until consent returns: no password asked for, nothing syncs through it.
    assert pending.oauth_provider == "testidp" and not pending.incoming_enabled and not pending.awaiting_password
    assert pending.state == AccountState.DISABLED and pending.oauth_refresh_token_encrypted == ""
    assert pending.pk not in eligible_accounts()

    done = _consent(staff, start)
    assert done.status_code == 302 and done["Location"] == f"/settings/email/accounts/{pending.pk}/", \
        [str(m) for m in done.wsgi_request._messages]
    pending.refresh_from_db()
    assert pending.incoming_enabled and pending.default_incoming and pending.state == AccountState.IDLE
    assert idp.refresh[crypto.decrypt(pending.oauth_refresh_token_encrypted)] == pending.email_address
    assert pending.pk in eligible_accounts()
    assert probe_account(pending, outgoing=False, timeout=5).ok


def test_a_new_account_stays_off_when_the_provider_refuses(staff, idp, oauth_dovecot, provider_settings):
    form = _new_account_form(oauth_dovecot)
    start = staff.post("/settings/email/accounts/new/", form)
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    refused = staff.get("/settings/email/oauth/callback/", {"error": "access_denied", "state": state})
    account = EmailAccount.objects.get(email_address=form["email_address"])
    assert refused["Location"] == f"/settings/email/accounts/{account.pk}/edit/"
    assert not account.incoming_enabled and account.state == AccountState.DISABLED
    unknown = staff.post("/settings/email/accounts/new/", _new_account_form(oauth_dovecot, oauth_provider="nope"))
    assert unknown.status_code == 200 and "not set up on this installation" in unknown.content.decode()


def test_a_new_oauth_account_as_every_role(world, idp, oauth_dovecot, provider_settings):
    """Administrators, and a supervisor for their own store only; agents and others never."""
    for role, store, expected in (("admin", None, 302), ("supervisor_a", world.a.store, 302),
                                  ("supervisor_a", world.b.store, 200), ("supervisor_b", world.a.store, 200),
                                  ("agent_a", world.a.store, 403),
                                  ("agent_b", world.b.store, 403), ("nobody", None, 403), ("anonymous", None, 302)):
        form = _new_account_form(oauth_dovecot, **({"store": str(store.pk)} if store else {}))
        response = world.client(role).post("/settings/email/accounts/new/", form)
        assert response.status_code == expected, (role, response.status_code)
        created = EmailAccount.objects.filter(email_address=form["email_address"]).exists()
        goes_to_provider = expected == 302 and response["Location"].startswith(idp.url)
        assert created is goes_to_provider, (role, store)
        if role == "anonymous":
            assert response["Location"].startswith("/login/")
