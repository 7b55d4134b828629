"""API token authentication: django-rest-knox's (only hashes stored, inactive users refused), with
failed attempts counted per client address like failed sign-ins (buzon.core.signin)."""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_credentials
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header
from rest_framework.request import Request

from buzon.core import api_tokens, invitations, signin
from buzon.core.signin import TOKEN_USERNAME


class ApiTokenAuthentication(TokenAuthentication):  # type: ignore[misc]
    """`Authorization: Token <token>`. After too many wrong tokens from one address, that address is
    refused API tokens (429) for the cool-off time, right tokens included, so guessing gains nothing."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.authenticate_header(request).encode().lower():
            return None
        http_request = request._request
        credentials = get_credentials(TOKEN_USERNAME)
        if not AxesProxyHandler.is_allowed(http_request, credentials):
            refused = exceptions.Throttled(wait=settings.AXES_COOLOFF_TIME.total_seconds())  # Retry-After
            # the wait in words once, not followed by DRF's "Expected available in 900 seconds."
            refused.detail = exceptions.ErrorDetail(signin.tokens_locked_out_text(), code="throttled")
            raise refused
        try:
            user, row = super().authenticate(request)
        except exceptions.AuthenticationFailed:
            # django-axes counts it (and marks the request locked out when this one reaches the limit).
            user_login_failed.send(sender=__name__, credentials=credentials, request=http_request)
            raise
        if invitations.is_pending(user):  # invited, password not chosen yet: nothing answers them
            raise exceptions.AuthenticationFailed(_("Set your password through your invitation link first."))
        api_tokens.mark_used(row)
        return user, row

    def _cleanup_token(self, auth_token: Any) -> bool:
        """knox reads all the user's tokens on every request to delete the expired ones. Buzón's tokens
        never expire (REST_KNOX TOKEN_TTL None, `api_tokens.create`): a token without an expiry is
        valid as it is, without that query. One with an expiry is checked by knox as before."""
        if auth_token.expiry is None:
            return False
        return bool(super()._cleanup_token(auth_token))


class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call,misc]
    """How the OpenAPI schema (/api/schema/) describes the token: `Authorization: Token <token>`."""

    target_class = "buzon.api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")  # type: ignore[no-any-return]
