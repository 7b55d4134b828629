"""A connection-test report (mailboxes.probe.ProbeReport) as the API's JSON (ProbeReportSerializer)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework.request import Request

from buzon.api.errors import help_url
from buzon.mailboxes.probe import DirectionResult, ProbeReport


def _result(result: DirectionResult | None, request: Request) -> dict[str, Any] | None:
    if result is None:
        return None
    error = result.error
    return {
        "ok": error is None,
        "server": result.server or None,
        "code": error.code if error is not None else None,
        "message": error.message() if error is not None else _("Connected and logged in."),
        "help_url": help_url(request, error.help_slug) if error is not None else None,
    }


def report_data(report: ProbeReport, request: Request) -> dict[str, Any]:
    return {"ok": report.ok, "incoming": _result(report.incoming, request),
            "outgoing": _result(report.outgoing, request)}
