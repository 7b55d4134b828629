"""Golden pairs: tests/data/parse/NAME.eml (raw) with NAME.json (the expected parse)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from buzon.inbound.mail.parse import parse_bytes
from buzon.sync import mimescan
from buzon.sync.headers import parse_header_fields
from tests.inbound.stdlib_parse import differences

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


@pytest.mark.parametrize("name", CASES)
def test_golden_parse_agrees_with_the_standard_library(name):
    """policy.default reads each golden message the same way, but for the intended differences
    named in tests/inbound/stdlib_parse.py (a BOM, raw 8-bit headers, a malformed Content-Type...)."""
    data = (DATA / f"{name}.eml").read_bytes()
    assert differences(parse_bytes(data), data) == []


@pytest.mark.parametrize("name", CASES)
def test_the_syncs_own_header_read_agrees_with_the_parse(name):
    """What the sync stores before the pipeline runs (the list's From and Subject, the names of the
    parts a POP3 message larger than the limit is cut into) reads raw UTF-8 as UTF-8, never U+FFFD."""
    data = (DATA / f"{name}.eml").read_bytes()
    mail, fields = parse_bytes(data), parse_header_fields(data)
    assert fields.subject == " ".join(mail.subject.split())
    assert (mail.from_name or mail.from_address) in fields.from_header
    _headers, spans, _multipart = mimescan.scan(io.BytesIO(data))
    names = [span.leaf.name for span in spans if span.leaf.name]
    assert {a.filename for a in mail.attachments if a.filename} <= set(names)  # (a named body is not a file)
    assert "\ufffd" not in fields.subject + fields.from_header + "".join(names)


def test_raw_utf8_subject_and_name_read_by_the_sync_as_written():
    data = (DATA / "raw-utf8-headers.eml").read_bytes()
    fields = parse_header_fields(data)
    assert (fields.subject, fields.from_header) == ("Año nuevo: factura €", "Begoña Núñez <bego@example.test>")
    assert [s.leaf.name for s in mimescan.scan(io.BytesIO(data))[1]] == ["", "Factura año €.pdf"]
    assert parse_header_fields((DATA / "bom-before-headers.eml").read_bytes()).subject == "Guardado con BOM"
