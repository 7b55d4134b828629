"""OAuth 2.0 sign-in to Gmail / Google Workspace and Microsoft 365 mailboxes (RFC 6749 + PKCE, RFC 7636).

Those providers no longer accept passwords from "less secure apps": an administrator signs in to the
mailbox with the provider once (authorization-code flow started from the account form, see
web/views_oauth.py); Buzón keeps the refresh token encrypted (core.crypto, registered for rotate-keys)
and logs in to IMAP, POP3 and SMTP with short-lived access tokens over XOAUTH2 (or OAUTHBEARER,
RFC 7628), refreshing them before they expire. A refresh answered `invalid_grant` means the consent
was revoked (or the password changed): the account is marked SIGN_IN_REVOKED with a plain message
and its tokens are dropped, until someone signs in again.

Only the standard library speaks HTTP here (two form POSTs and a JSON answer).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from buzon.core import crypto
from buzon.mailboxes.errors import AuthenticationFailed
from buzon.mailboxes.models import AccountState, EmailAccount

HTTP_TIMEOUT_S = 20


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    client_id: str
    client_secret: str = ""
    mechanism: str = "XOAUTH2"  # or OAUTHBEARER

    @property
    def configured(self) -> bool:
        return bool(self.client_id)


def providers() -> dict[str, Provider]:
    """Google and Microsoft from their settings, plus (or overridden by) settings.OAUTH_PROVIDERS."""
    tenant = settings.OAUTH_MICROSOFT_TENANT or "common"
    found = {
        "google": Provider(
            "google", "Google", "https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token",
            ("https://mail.google.com/",), settings.OAUTH_GOOGLE_CLIENT_ID, settings.OAUTH_GOOGLE_CLIENT_SECRET,
        ),
        "microsoft": Provider(
            "microsoft", "Microsoft 365", f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
            f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
            ("https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/POP.AccessAsUser.All",
             "https://outlook.office.com/SMTP.Send", "offline_access"),
            settings.OAUTH_MICROSOFT_CLIENT_ID, settings.OAUTH_MICROSOFT_CLIENT_SECRET,
        ),
    }
    extra: dict[str, dict[str, Any]] = settings.OAUTH_PROVIDERS or {}
    for key, conf in extra.items():
        found[key] = Provider(
            key, str(conf.get("name", key)), str(conf["authorize_url"]), str(conf["token_url"]),
            tuple(str(scope) for scope in conf.get("scopes", ())), str(conf.get("client_id", "")),
            str(conf.get("client_secret", "")), str(conf.get("mechanism", "XOAUTH2")),
        )
    return found


def provider(key: str) -> Provider | None:
    return providers().get(key)


class OAuthError(Exception):
    """The provider refused or could not be reached; `code` is its OAuth error code when it gave one."""

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}" if detail else code)


# ---------------------------------------------------------------------------------------- the flow
def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_url(p: Provider, *, redirect_uri: str, state: str, challenge: str, login_hint: str = "") -> str:
    query = {
        "response_type": "code", "client_id": p.client_id, "redirect_uri": redirect_uri, "scope": " ".join(p.scopes),
        "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
        # Google hands out a refresh token only with offline access and (again) only on consent.
        "access_type": "offline", "prompt": "consent",
    }
    if login_hint:
        query["login_hint"] = login_hint
    separator = "&" if "?" in p.authorize_url else "?"
    return p.authorize_url + separator + urllib.parse.urlencode(query)


def _token_request(p: Provider, form: dict[str, str]) -> dict[str, Any]:
    url = urllib.parse.urlsplit(p.token_url)
    if url.scheme != "https" and not (url.scheme == "http" and url.hostname in ("127.0.0.1", "::1", "localhost")):
        # Tokens and the client secret never travel in clear text (http only to this machine).
        raise OAuthError("insecure_token_url", f"{p.key}: the token URL must be https")
    form = {**form, "client_id": p.client_id}
    if p.client_secret:
        form["client_secret"] = p.client_secret
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        p.token_url, data=urllib.parse.urlencode(form).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    try:
        # nosec B310: the scheme was checked above (https, or http to loopback).
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310  # nosec B310
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        raise OAuthError(str(body.get("error") or f"http_{exc.code}"),
                         str(body.get("error_description", ""))[:300]) from exc
    except (OSError, ValueError) as exc:
        raise OAuthError("unreachable", str(exc)[:300]) from exc


def exchange_code(p: Provider, *, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
    return _token_request(p, {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                              "redirect_uri": redirect_uri})


def store_tokens(account: EmailAccount, p: Provider, answer: dict[str, Any]) -> None:
    """Keep the provider's answer, encrypted; a refresh that brings no new refresh token keeps the old one."""
    if not answer.get("access_token"):
        raise OAuthError("no_access_token", "the token endpoint answered without an access token")
    account.oauth_provider = p.key
    account.oauth_access_token_encrypted = crypto.encrypt(str(answer["access_token"]))
    if answer.get("refresh_token"):
        account.oauth_refresh_token_encrypted = crypto.encrypt(str(answer["refresh_token"]))
    expires_in = int(answer.get("expires_in") or 3600)
    account.oauth_expires_at = timezone.now() + timedelta(seconds=expires_in)


# ------------------------------------------------------------------------------ using the tokens
REVOKED_TEXT = _("The provider no longer accepts Buzón's sign-in for this mailbox (consent was revoked or "
                 "the password changed). Open the account and sign in with the provider again.")


class SignInRevoked(AuthenticationFailed):
    """The refresh token was refused (`invalid_grant`): someone must sign in with the provider again."""

    def explain(self) -> str:
        return str(REVOKED_TEXT)


def _mark_revoked(account: EmailAccount, detail: str) -> None:
    EmailAccount.objects.filter(pk=account.pk).update(
        state=AccountState.SIGN_IN_REVOKED, last_error=str(REVOKED_TEXT), last_error_code="auth",
        last_error_state={"code": "auth", "reason": "revoked"},
        oauth_access_token_encrypted="", oauth_refresh_token_encrypted="", oauth_expires_at=None,
    )
    account.state = AccountState.SIGN_IN_REVOKED
    account.oauth_access_token_encrypted = account.oauth_refresh_token_encrypted = ""
    account.oauth_expires_at = None


def access_token(account: EmailAccount) -> str:
    """A usable access token, refreshed first when it expires within OAUTH_REFRESH_MARGIN_S.

    The refresh runs under a row lock, so the sync process and a sender refreshing at once make
    one request (providers may invalidate a refresh token used twice).
    """
    margin = timedelta(seconds=settings.OAUTH_REFRESH_MARGIN_S)
    if account.oauth_access_token_encrypted and account.oauth_expires_at and \
            account.oauth_expires_at - margin > timezone.now():
        return crypto.decrypt(account.oauth_access_token_encrypted)
    p = provider(account.oauth_provider)
    if p is None:
        raise AuthenticationFailed(reason="oauth_provider", detail=f"unknown OAuth provider {account.oauth_provider!r}")
    with transaction.atomic():
        row = EmailAccount.objects.select_for_update().get(pk=account.pk)
        if row.oauth_access_token_encrypted and row.oauth_expires_at and row.oauth_expires_at - margin > timezone.now():
            account.oauth_access_token_encrypted, account.oauth_expires_at = (row.oauth_access_token_encrypted,
                                                                              row.oauth_expires_at)
            return crypto.decrypt(row.oauth_access_token_encrypted)  # another process refreshed it
        if not row.oauth_refresh_token_encrypted:
            raise SignInRevoked(reason="oauth_revoked", detail="no refresh token stored")
        try:
            answer = _token_request(p, {"grant_type": "refresh_token",
                                        "refresh_token": crypto.decrypt(row.oauth_refresh_token_encrypted)})
        except OAuthError as exc:
            if exc.code != "invalid_grant":
                raise AuthenticationFailed(reason="oauth_refresh", detail=f"refresh: {exc}") from exc
            revoked: OAuthError | None = exc
        else:
            revoked = None
            store_tokens(row, p, answer)
            # A queryset update: a routine refresh is no settings change for the audit log.
            EmailAccount.objects.filter(pk=row.pk).update(
                oauth_access_token_encrypted=row.oauth_access_token_encrypted,
                oauth_refresh_token_encrypted=row.oauth_refresh_token_encrypted, oauth_expires_at=row.oauth_expires_at)
    if revoked is not None:  # written after the locking transaction, which the raise would roll back
        _mark_revoked(account, revoked.detail)
        raise SignInRevoked(reason="oauth_revoked", detail=f"refresh: {revoked}") from revoked
    for name in ("oauth_access_token_encrypted", "oauth_refresh_token_encrypted", "oauth_expires_at"):
        setattr(account, name, getattr(row, name))
    return crypto.decrypt(row.oauth_access_token_encrypted)


def current_token(account_id: int | None, token: str, expires: float) -> str:
    """The token a connection should log in with now: `token` while it is fresh, else the account's
    refreshed one (a sync connection outlives the hour an access token lasts)."""
    if account_id is None or expires - settings.OAUTH_REFRESH_MARGIN_S > timezone.now().timestamp():
        return token
    account = EmailAccount.objects.filter(pk=account_id).first()
    if account is None:
        raise SignInRevoked(reason="oauth_revoked", detail="account gone")
    return access_token(account)
