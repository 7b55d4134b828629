"""System checks `buzon check` (and every management command that checks) reports."""

from __future__ import annotations

import os
from typing import Any

from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning

from buzon.core import public_url
from buzon.core.cli import QUIET_START


@register(Tags.urls)
def public_address_is_set(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A production site must say where people reach it: links in its mail start there. The processes
    `buzon run` starts (QUIET_START set) leave it to `buzon run`, which says it once."""
    why = public_url.missing_warning()
    if not why or os.environ.get(QUIET_START):
        return []
    return [CheckWarning(why, hint="export BUZON_BASE_URL=https://buzon.example.com  (see README, Configuration)",
                         id="buzon.W001")]
