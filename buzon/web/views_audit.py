"""Settings → Audit log: who changed which setting of which account, domain or store (staff only)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

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
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"entry": entry, "changes": described_changes(entry.target_type, entry.changes)} for entry in page]
    return render(request, "web/audit/log.html", {
        "page": page, "rows": rows, "types": AuditEntry.Target.choices, "type": target_type,
    })
