"""Contexts import only the ones below them (DESIGN.md), so the pipeline never talks to a mail server
and nothing below the faces imports a view."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "buzon"

# Each context and the contexts it may import (besides itself).
LAYERS: dict[str, set[str]] = {
    "core": set(),
    "crm": {"core"},
    "mailboxes": {"crm", "core"},
    "sync": {"mailboxes", "crm", "core"},
    "messages": {"sync", "mailboxes", "crm", "core"},
    # Full-text search: the index and its queries; who may see a hit is the caller's (workspace).
    "search": {"messages", "sync", "mailboxes", "crm", "core"},
    "inbound": {"messages", "sync", "mailboxes", "crm", "core"},
    "outbound": {"messages", "sync", "mailboxes", "crm", "core"},
    # The workspace: what people do with conversations (actions, access, reads), for both faces.
    "workspace": {"search", "inbound", "outbound", "messages", "sync", "mailboxes", "crm", "core"},
    "api": {"workspace", "search", "inbound", "outbound", "messages", "sync", "mailboxes", "crm", "core"},
    "web": {"workspace", "search", "inbound", "outbound", "messages", "sync", "mailboxes", "crm", "core"},
}
# The pipeline's steps are reached by the sync engine only through settings.INBOUND_TASK.


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(context: str) -> list[Path]:
    return [p for p in (ROOT / context).rglob("*.py") if "migrations" not in p.parts]


@pytest.mark.parametrize("context", sorted(LAYERS))
def test_context_imports_only_the_ones_below(context):
    allowed = LAYERS[context] | {context}
    wrong = []
    for path in _modules(context):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] != "buzon" or len(parts) < 2 or parts[1] not in LAYERS:
                continue
            if parts[1] not in allowed:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("context", sorted(set(LAYERS) - {"web", "api"}))
def test_nothing_below_the_faces_imports_a_view(context):
    for path in _modules(context):
        for name in _imports(path):
            assert not name.endswith((".views", ".viewsets")), f"{path} imports {name}"
