"""Optional TOTP second factor for administrators (django-otp): enrol with a QR code, verify at sign-in,
with one-time recovery codes for a lost phone.

The QR code is drawn here as inline SVG (segno), so the secret never leaves the server to an
outside QR service. django-otp's devices throttle wrong codes by themselves. Recovery codes
(buzon.web.models) are shown once, when made, and kept only hashed. Enrolling, removing, making
new recovery codes and signing in with one are written to the audit log.
"""

from __future__ import annotations

from base64 import b32encode
from typing import Any

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from buzon.mailboxes.audit import record_second_factor
from buzon.web.access import staff_required
from buzon.web.forms import BootstrapFormMixin
from buzon.web.models import CODE_COUNT, RecoveryCodeDevice, looks_like_recovery_code
from buzon.web.next_url import local_next

WRONG = gettext_lazy("That code is not right. Check the time on your phone and try again.")


class CodeForm(BootstrapFormMixin, forms.Form):
    code = forms.CharField(
        label=gettext_lazy("code from your authenticator app, or a recovery code"), max_length=16, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.style_fields()


def _qr_svg(url: str) -> str:
    # The SVG is drawn modules (paths), never the URL as text, so nothing in it can become markup.
    return mark_safe(segno.make(url, error="m").svg_inline(scale=4, dark="#000", light="#fff"))  # noqa: S308  # nosec B308 B703


def _recovery(user: Any) -> RecoveryCodeDevice | None:
    return RecoveryCodeDevice.objects.filter(user=user, confirmed=True).first()


def check_code(request: HttpRequest, code: str) -> TOTPDevice | RecoveryCodeDevice | None:
    """The confirmed device ``code`` is good for: the authenticator app's, or a recovery code (used
    up, and logged). Routed by shape, so a wrong guess counts against one device's throttle only."""
    user = request.user
    if looks_like_recovery_code(code):
        device = _recovery(user)
        if device is None or not device.verify_token(code):
            return None
        left = device.unused()
        record_second_factor(user, "used", [{"field": "recovery_codes", "old": left + 1, "new": left}])
        return device
    totp = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return totp if totp is not None and totp.verify_token(code) else None


def _new_codes(user: Any) -> list[str]:
    device, _created = RecoveryCodeDevice.objects.get_or_create(user=user, defaults={"name": "Recovery codes"})
    return device.replace_codes()


def _codes_page(request: HttpRequest, codes: list[str]) -> HttpResponse:
    """The only time the codes are shown: in this response, never stored or cached."""
    return render(request, "web/security/two_factor.html", {
        "form": CodeForm(), "enrolled": True, "codes": codes, "unused": len(codes),
        "breadcrumbs": [(_("Two-step sign-in"), None)],
    })


@staff_required
@never_cache
def two_factor(request: HttpRequest) -> HttpResponse:
    """Enrol (scan, then confirm a code); once enrolled, make new recovery codes or turn it off."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if confirmed is None:
        return _enrol(request)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if check_code(request, form.cleaned_data["code"]) is None:
            form.add_error("code", WRONG)
        elif request.POST.get("action") == "regenerate":
            recovery = _recovery(user)
            before = recovery.unused() if recovery is not None else 0
            codes = _new_codes(user)
            record_second_factor(user, "changed", [{"field": "recovery_codes", "old": before, "new": len(codes)}])
            return _codes_page(request, codes)
        else:
            with transaction.atomic():
                recovery = _recovery(user)
                before = recovery.unused() if recovery is not None else 0
                TOTPDevice.objects.filter(user=user).delete()
                RecoveryCodeDevice.objects.filter(user=user).delete()
                record_second_factor(user, "deleted", [{"field": "two_factor", "secret": True},
                                                       {"field": "recovery_codes", "old": before, "new": 0}])
            messages.success(request, _("Two-step sign-in is off."))
            return redirect("web:two-factor")
    recovery = _recovery(user)
    return render(request, "web/security/two_factor.html", {
        "form": form, "enrolled": True, "unused": recovery.unused() if recovery is not None else 0,
        "breadcrumbs": [(_("Two-step sign-in"), None)],
    })


def _enrol(request: HttpRequest) -> HttpResponse:
    user = request.user
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Buzón", confirmed=False)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            with transaction.atomic():
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                codes = _new_codes(user)
                record_second_factor(user, "created", [{"field": "two_factor", "secret": True},
                                                       {"field": "recovery_codes", "old": None, "new": len(codes)}])
            otp_login(request, device)
            messages.success(request, _("Two-step sign-in is on: you will be asked for a code after your password."))
            return _codes_page(request, codes)
        form.add_error("code", WRONG)
    return render(request, "web/security/two_factor.html", {
        "form": form, "enrolled": False, "qr": _qr_svg(device.config_url),
        "secret": b32encode(device.bin_key).decode(), "breadcrumbs": [(_("Two-step sign-in"), None)],
    })


@login_required
@never_cache
def verify(request: HttpRequest) -> HttpResponse:
    """The second step of sign-in for users with a confirmed device (or one of their recovery codes)."""
    next_url = local_next(request, "web:home")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = check_code(request, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            if isinstance(device, RecoveryCodeDevice):
                left = device.unused()
                messages.warning(request, _("You signed in with a recovery code; %(left)s of %(all)s are left. "
                                            "Make new ones under Two-step sign-in if you are running out.")
                                 % {"left": left, "all": CODE_COUNT})
            return redirect(next_url)
        form.add_error("code", WRONG)
    return render(request, "web/security/verify.html", {"form": form, "next": next_url})
