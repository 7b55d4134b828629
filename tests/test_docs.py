"""docs/web-and-api.md describes every page and every API endpoint Buzón serves (a new URL without a line
there fails here), written the way the document writes them: pages as `/path/<id>/`, API endpoints as
`/api/v1/path/{id}/`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from django.urls import get_resolver
from django.urls.resolvers import URLPattern, URLResolver

DOC = Path(__file__).resolve().parents[1] / "docs" / "web-and-api.md"
#: Served but not pages or endpoints a person or integrator uses.
NOT_DOCUMENTED = {"set_language", "api-root"}


def _routes(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif pattern.name not in NOT_DOCUMENTED:
            yield prefix + str(pattern.pattern), str(pattern.name)


def documented_form(route: str) -> str | None:
    """The route as the document writes it; None for DRF's format-suffix twins."""
    if "format" in route:
        return None
    api = route.startswith("api/v1/")
    route = route.replace("^", "").replace("$", "")
    opening, closing = ("{", "}") if api else ("<", ">")

    def name(match: re.Match[str]) -> str:
        return opening + ("id" if match.group(1) == "pk" else match.group(1)) + closing

    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", name, route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", name, route)
    return "/" + route


def test_every_page_and_endpoint_is_described():
    text = DOC.read_text()
    missing = sorted({form for route, _name in _routes(get_resolver().url_patterns)
                      if (form := documented_form(route)) is not None and f"`{form}`" not in text})
    assert not missing, f"docs/web-and-api.md does not describe: {missing}"
