"""Golden pairs: tests/data/parse/NAME.eml (raw) with NAME.json (the expected parse)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buzon.inbound.mail.parse import parse_bytes

DATA = Path(__file__).resolve().parents[1] / "data" / "parse"
CASES = sorted(p.stem for p in DATA.glob("*.eml"))


@pytest.mark.parametrize("name", CASES)
def test_golden_parse(name):
    mail = parse_bytes((DATA / f"{name}.eml").read_bytes())
    expected = json.loads((DATA / f"{name}.json").read_text())
    for field in ("subject", "from_name", "from_address", "to", "message_id", "in_reply_to", "references"):
        if field in expected:
            assert getattr(mail, field) == expected[field], field
    assert mail.text.strip() == expected["text"]
    if "date" in expected:
        assert (mail.date.isoformat() if mail.date else None) == expected["date"]
    for fragment in expected.get("html_contains", []):
        assert fragment in mail.html
    for fragment in expected.get("html_excludes", []):
        assert fragment not in mail.html.lower()
    got = [{k: getattr(a, k) for k in want} for a, want in zip(mail.attachments, expected["attachments"], strict=False)]
    assert got == expected["attachments"]
    assert len(mail.attachments) == len(expected["attachments"])


def test_there_are_golden_pairs():
    assert len(CASES) >= 6
    assert all((DATA / f"{name}.json").exists() for name in CASES)
