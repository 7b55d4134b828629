"""Every list of the API pages by keyset (a cursor on the list's ordering), never by offset, and
never counts the table: page 1,000 costs what page 1 costs, at a million rows.

The ordering is the model's own (``Meta.ordering``, e.g. newest first: ``-created_at, -id``), which
the list's indexes are built to serve, else newest id first. ``next`` and ``previous`` are the URLs
of the neighbouring pages (an opaque, signed-by-nothing but harmless cursor: it only says where to
continue); ``limit`` (or ``page_size``) asks for up to 1,000 rows a page, 100 by default.
"""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import CursorPagination


class KeysetPagination(CursorPagination):
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "limit"
    cursor_query_param = "cursor"

    def get_page_size(self, request: Any) -> int | None:
        # ``limit`` as the API always took it; ``page_size`` as some clients spell it.
        if self.page_size_query_param not in request.query_params and "page_size" in request.query_params:
            try:
                return min(max(int(request.query_params["page_size"]), 1), self.max_page_size)
            except (TypeError, ValueError):
                return self.page_size
        return super().get_page_size(request)

    def get_ordering(self, request: Any, queryset: Any, view: Any) -> tuple[str, ...]:
        explicit = getattr(view, "ordering", None)
        if explicit:
            return (explicit,) if isinstance(explicit, str) else tuple(explicit)
        ordering = tuple(queryset.query.order_by or queryset.model._meta.ordering or ())
        if not ordering or ordering[0].lstrip("-") in ("?",):
            return ("-pk",)
        # CursorPagination positions on the first field; ties are walked by offset within it.
        return tuple(str(field) for field in ordering)
