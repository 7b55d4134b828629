"""A connection-test report (mailboxes.services.test_account) as rows for the "Test connection" result."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from buzon.web.help_links import help_url


def probe_results(report: Any) -> list[dict[str, Any]]:
    rows = []
    for direction, label in (("incoming", _("Incoming email")), ("outgoing", _("Outgoing email"))):
        result = getattr(report, direction, None)
        if result is None:
            rows.append({"direction": direction, "label": label, "ok": False, "skipped": True,
                         "text": _("Not enabled: not tested."), "server": "", "help_url": None})
            continue
        error = getattr(result, "error", None)
        rows.append({
            "direction": direction, "label": label, "ok": error is None, "skipped": False,
            "server": str(getattr(result, "server", "") or ""),
            "text": error.message() if error is not None else _("Connected and logged in."),
            "help_url": help_url(error.help_slug) if error is not None else None,
        })
    return rows
