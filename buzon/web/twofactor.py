"""Optional TOTP second factor for administrators (django-otp): enrol with a QR code, verify at sign-in.

The QR code is drawn here as inline SVG (segno), so the secret never leaves the server to an
outside QR service. django-otp's TOTP device throttles wrong codes by itself.
"""

from __future__ import annotations

from base64 import b32encode

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django_otp import devices_for_user
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from buzon.web.access import staff_required
from buzon.web.forms import BootstrapFormMixin


class CodeForm(BootstrapFormMixin, forms.Form):
    code = forms.CharField(
        label=gettext_lazy("code from your authenticator app"), max_length=8, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.style_fields()


def _qr_svg(url: str) -> str:
    # The SVG is drawn modules (paths), never the URL as text, so nothing in it can become markup.
    return mark_safe(segno.make(url, error="m").svg_inline(scale=4, dark="#000", light="#fff"))  # noqa: S308  # nosec B308 B703


@staff_required
@never_cache
def two_factor(request: HttpRequest) -> HttpResponse:
    """Enrol (scan, then confirm a code) or, once enrolled, turn the second factor off with a code."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    device = confirmed or TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Buzón", confirmed=False)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not device.verify_token(form.cleaned_data["code"]):
            form.add_error("code", _("That code is not right. Check the time on your phone and try again."))
        elif confirmed is None:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            messages.success(request, _("Two-step sign-in is on: you will be asked for a code after your password."))
            return redirect("web:two-factor")
        else:
            device.delete()
            messages.success(request, _("Two-step sign-in is off."))
            return redirect("web:two-factor")
    return render(request, "web/security/two_factor.html", {
        "form": form, "enrolled": confirmed is not None,
        "qr": "" if confirmed else _qr_svg(device.config_url),
        "secret": "" if confirmed else b32encode(device.bin_key).decode(),
        "breadcrumbs": [(_("Two-step sign-in"), None)],
    })


@login_required
@never_cache
def verify(request: HttpRequest) -> HttpResponse:
    """The second step of sign-in for users with a confirmed device."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = ""
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for device in devices_for_user(request.user, confirmed=True):
            if device.verify_token(form.cleaned_data["code"]):
                otp_login(request, device)
                return redirect(next_url or "web:home")
        form.add_error("code", _("That code is not right. Check the time on your phone and try again."))
    return render(request, "web/security/verify.html", {"form": form, "next": next_url})
