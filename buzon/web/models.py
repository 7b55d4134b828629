"""Recovery codes for the TOTP second factor: the way back in when the phone is lost.

A django-otp device, so the sign-in gate and the verify page treat it like the authenticator app.
Each code works once and is kept only as a SHA-256 digest: the codes carry 50 random bits each, so
a fast hash is enough (there is no dictionary to try), and a copy of the database gives nobody a
code. Wrong tries are throttled (django-otp's ThrottlingMixin), as for TOTP codes.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db import models, transaction
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin

CODE_COUNT = 10
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off paper without doubt


def normalise(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def digest(code: str) -> str:
    return hashlib.sha256(normalise(code).encode("ascii", "replace")).hexdigest()


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def looks_like_recovery_code(token: str) -> bool:
    return len(normalise(token)) == 10 and not normalise(token).isdigit()


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """A user's current set of one-time recovery codes (one device per user; regenerating replaces it)."""

    def get_throttle_factor(self) -> int:
        return 1

    def replace_codes(self) -> list[str]:
        """A fresh set: every earlier code stops working. The plain codes are returned once, never stored."""
        codes = [new_code() for _ in range(CODE_COUNT)]
        with transaction.atomic():
            self.codes.all().delete()
            RecoveryCode.objects.bulk_create(RecoveryCode(device=self, code_hash=digest(c)) for c in codes)
        return codes

    def unused(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()

    def verify_token(self, token: str) -> bool:
        allowed, _details = self.verify_is_allowed()
        if not allowed:
            return False
        # Marking it used is the check itself: two sign-ins racing with one code cannot both win.
        used = self.codes.filter(code_hash=digest(token), used_at__isnull=True).update(used_at=timezone.now())
        if used:
            self.throttle_reset()
        else:
            self.throttle_increment()
        return bool(used)


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64, db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code of {self.device.user} ({'used' if self.used_at else 'unused'})"
