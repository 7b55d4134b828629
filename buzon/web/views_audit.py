"""Settings → Audit log: who changed which setting of which account, domain or store (staff only)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render

from buzon.core import keyset
from buzon.mailboxes.audit import described_changes
from buzon.mailboxes.models import AuditEntry
from buzon.web.access import staff_required

PAGE_SIZE = 50


@staff_required
def audit_log(request: HttpRequest) -> HttpResponse:
    entries = AuditEntry.objects.select_related("actor")
    target_type = request.GET.get("type", "")
    if target_type in AuditEntry.Target.values:
        entries = entries.filter(target_type=target_type)
        target_id = request.GET.get("id", "")
        if target_id.isdigit():
            entries = entries.filter(target_id=int(target_id))
    try:
        found = keyset.page(entries, field="at", before=request.GET.get("before", ""),
                            after=request.GET.get("after", ""), size=PAGE_SIZE)
    except keyset.BadCursor as bad:
        return HttpResponseBadRequest(f"cursor: {bad}")
    rows = [{"entry": entry, "changes": described_changes(entry.target_type, entry.changes)} for entry in found.rows]
    return render(request, "web/audit/log.html", {
        "found": found, "rows": rows, "types": AuditEntry.Target.choices, "type": target_type,
    })
