"""Sign in to a Google / Microsoft 365 mailbox with OAuth 2.0 (authorization code + PKCE), from the account.

/settings/email/accounts/<pk>/oauth/<provider>/ sends the administrator to the provider with a fresh
`state` and PKCE challenge kept in their session; the provider sends the browser back to
/settings/email/oauth/callback/, where the state is checked (once), the code exchanged, the tokens
stored encrypted and the account probed with them before it is saved (mailboxes.services).

A brand-new account starts the same flow from the new-account form (start_for_new_account): it is
saved at once with its directions off (no credentials, so nothing syncs or sends through it), and
the directions asked for are switched on when consent returns and the probe with the token passes.
"""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _

import buzon.mailboxes.services as services
from buzon.crm import roles
from buzon.mailboxes import oauth
from buzon.mailboxes.models import EmailAccount
from buzon.web.access import account_managers, require_manage_account

SESSION_KEY = "buzon_oauth_pending"
MAX_PENDING = 5  # sign-ins started and not finished, per session


def _callback_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("web:oauth-callback"))


#: What a new account waiting for consent has switched off, to switch back on when consent returns.
HELD_BACK = ("incoming_enabled", "outgoing_enabled", "default_incoming", "default_outgoing")


def _to_provider(request: HttpRequest, account: EmailAccount, p: oauth.Provider,
                 enable: dict[str, bool] | None = None) -> HttpResponse:
    verifier, challenge = oauth.pkce_pair()
    state = secrets.token_urlsafe(32)
    pending = dict(list(request.session.get(SESSION_KEY, {}).items())[-(MAX_PENDING - 1):])
    pending[state] = {"account": account.pk, "provider": p.key, "verifier": verifier, "enable": enable or {}}
    request.session[SESSION_KEY] = pending
    return redirect(oauth.authorization_url(p, redirect_uri=_callback_url(request), state=state,
                                            challenge=challenge, login_hint=account.login_name))


@account_managers
def oauth_start(request: HttpRequest, pk: int, provider: str) -> HttpResponse:
    account = get_object_or_404(roles.visible_accounts(request.user), pk=pk)
    require_manage_account(request, account.store_id)
    p = oauth.provider(provider)
    if p is None or not p.configured:
        messages.error(request, _("Sign-in with this provider is not set up on this installation."))
        return redirect("web:account-edit", pk=account.pk)
    return _to_provider(request, account, p)


def start_for_new_account(request: HttpRequest, account: EmailAccount, provider: str) -> HttpResponse:
    """Save a new account (already validated by its form) as waiting for the provider, and go there.

    Raises ValidationError when the services refuse the account (shown on the form).
    """
    p = oauth.provider(provider)
    if p is None or not p.configured:
        raise ValidationError(_("Sign-in with this provider is not set up on this installation."))
    if not roles.may_choose_default_accounts(request.user):
        services.refuse_new_default_marks(account)
    wanted = {name: bool(getattr(account, name)) for name in HELD_BACK}
    for name in HELD_BACK:
        setattr(account, name, False)
    account.oauth_provider, account.awaiting_password = p.key, False
    services.save_account(account, probe=False)
    return _to_provider(request, account, p, enable=wanted)


@login_required
def oauth_callback(request: HttpRequest) -> HttpResponse:
    pending = request.session.get(SESSION_KEY, {})
    started = pending.pop(request.GET.get("state", ""), None)  # each state is good for one answer
    request.session[SESSION_KEY] = pending
    if started is None:
        messages.error(request, _("This sign-in answer does not belong to a sign-in started here. Start it again "
                                  "from the account."))
        return redirect("web:account-list")
    account = get_object_or_404(roles.visible_accounts(request.user), pk=started["account"])
    require_manage_account(request, account.store_id)
    p = oauth.provider(started["provider"])
    if p is None or request.GET.get("error") or not request.GET.get("code"):
        messages.error(request, _("The provider did not grant access (%(reason)s).")
                       % {"reason": request.GET.get("error") or _("no code")})
        return redirect("web:account-edit", pk=account.pk)
    try:
        answer = oauth.exchange_code(p, code=request.GET["code"], verifier=started["verifier"],
                                     redirect_uri=_callback_url(request))
        oauth.store_tokens(account, p, answer)
        account.awaiting_password = False
        for name, value in started.get("enable", {}).items():
            if name in HELD_BACK:
                setattr(account, name, value)
        services.save_account(account, may_choose_defaults=roles.may_choose_default_accounts(request.user))
    except oauth.OAuthError as exc:
        messages.error(request, _("The provider refused the sign-in (%(reason)s).") % {"reason": exc.code})
        return redirect("web:account-edit", pk=account.pk)
    except ValidationError as exc:
        text = " ".join(str(m) for m in exc.messages)
        messages.error(request, _("Signed in, but the mail server did not accept it: %(error)s") % {"error": text})
        return redirect("web:account-edit", pk=account.pk)
    messages.success(request, _("%(address)s now signs in with %(provider)s.")
                     % {"address": account.email_address, "provider": p.name})
    return redirect("web:account-view", pk=account.pk)



