"""Spanish is complete: every catalogue entry translated, none fuzzy, every catalogue compiles."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "buzon"
CATALOGUES = sorted(ROOT.glob("*/locale/es/LC_MESSAGES/django.po"))


def _entries(text: str) -> list[tuple[str, str, bool]]:
    """(msgid, msgstr of the first form, fuzzy) for every entry but the header."""
    entries = []
    for block in re.split(r"\n\s*\n", text):
        fuzzy = "#, fuzzy" in block or re.search(r"^#,.*\bfuzzy\b", block, re.M) is not None
        msgid = "".join(re.findall(r'"(.*)"', _field(block, "msgid")))
        strs = _field(block, "msgstr") or _field(block, r"msgstr\[0\]")
        if not _field(block, "msgid") or msgid == "":
            continue
        entries.append((msgid, "".join(re.findall(r'"(.*)"', strs)), fuzzy))
    return entries


def _field(block: str, name: str) -> str:
    match = re.search(rf"^{name} (\".*\"(?:\n\".*\")*)", block, re.M)
    return match.group(1) if match else ""


def test_there_are_catalogues():
    assert CATALOGUES, "no Spanish catalogue found under buzon/*/locale/es"


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parts[-5])
def test_catalogue_is_complete(path):
    text = path.read_text()
    missing = [msgid for msgid, msgstr, fuzzy in _entries(text) if not msgstr or fuzzy]
    assert not missing, f"{path}: untranslated or fuzzy: {missing[:10]}"


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parts[-5])
def test_catalogue_compiles(path, tmp_path):
    if shutil.which("msgfmt") is None:
        pytest.skip("msgfmt (gettext) is not installed")
    subprocess.run(["msgfmt", "--check-format", "-o", str(tmp_path / "out.mo"), str(path)], check=True)
