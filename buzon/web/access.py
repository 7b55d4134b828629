"""Who may do what on the web pages: the decorators here ask buzon.crm.roles, the one place that decides.

Administrators (staff) change every setting; supervisors manage their stores' accounts; everyone
signed in sees only the rows roles.visible() gives them. Refusals are 403, never a login loop.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from buzon.crm import roles

View = Callable[..., HttpResponse]


def allowed_if(allowed: Callable[[Any], bool]) -> Callable[[View], View]:
    """A decorator: signed-in users for whom `allowed(user)` holds, 403 for the others."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not allowed(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator


#: Administrators only (settings: domains, stores, templates, DKIM, processes).
staff_required = allowed_if(roles.is_admin)
admin_required = staff_required
#: Administrators, and supervisors of at least one store; the view checks the account's store.
account_managers = allowed_if(roles.can_manage_any_accounts)
#: Administrators, and supervisors of at least one store; the view checks which agents.
agent_managers = allowed_if(roles.can_manage_any_agents)


def require_manage_account(request: HttpRequest, store_id: int | None) -> None:
    """403 unless the signed-in user may change accounts of this store."""
    if not roles.can_manage_accounts(request.user, store_id):
        raise PermissionDenied
