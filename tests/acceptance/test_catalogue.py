"""The acceptance suite covers both documents: every line proved (or why not), the table current."""

from __future__ import annotations

from buzon.web.forms import ACCOUNT_GROUPS
from tests.acceptance import catalogue
from tests.acceptance.lines import BY_REF, FORM_OPTIONS, LINES


def test_every_document_line_is_proved_or_explained():
    found = catalogue.proofs()
    missing = [line.ref for line in LINES if not found.get(line.ref) and not line.untestable]
    assert not missing, f"document lines with no acceptance test: {missing}"
    explained_and_proved = [line.ref for line in LINES if found.get(line.ref) and line.untestable]
    assert not explained_and_proved, f"lines both proved and called untestable: {explained_and_proved}"


def test_every_proof_names_a_line_that_exists():
    assert not set(catalogue.proofs()) - set(BY_REF)


def test_every_option_of_the_account_form_is_a_document_line():
    options = {name for _key, _title, names in ACCOUNT_GROUPS for name in names}
    assert options - set(FORM_OPTIONS) == set(), "account form options no document line names"
    assert set(FORM_OPTIONS) - options == set(), "document options the account form does not offer"
    assert set(FORM_OPTIONS.values()) <= set(BY_REF)


def test_the_published_table_is_current():
    assert catalogue.DOC.read_text() == catalogue.render(), (
        "docs/acceptance.md is stale: python -m tests.acceptance.catalogue > docs/acceptance.md")
