"""API tokens, stored only as hashes (django-rest-knox's model, with a name and a last-use time).

The token itself is shown once, when it is made; the database keeps its SHA-512 digest and its first
15 characters (`token_key`, how a presented token finds its row and how lists name it). Tokens are
made, listed and revoked through buzon.core.api_tokens, by the web page, the API and `buzon token`.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from knox.models import AbstractAuthToken


class ApiToken(AbstractAuthToken):
    name = models.CharField(_("name"), max_length=100, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.token_key}… ({self.name or 'unnamed'}) of user {self.user_id}"
