"""The mail-target registry: tokens, plus addresses and the X-Buzon-Ref header."""

import pytest

from buzon.crm.models import Customer, JobApplicant, Ticket
from buzon.messages import targets

pytestmark = pytest.mark.django_db


def test_builtin_targets_are_registered_and_offered_for_append_to():
    keys = [key for key, _ in targets.targets()]
    assert {"ticket", "job_applicant", "customer"} <= set(keys)
    assert targets.target_for(Ticket).prefix == "T"
    assert targets.target_for(JobApplicant).prefix == "J"
    assert targets.target_for(Customer).prefix == "C"


def test_record_token_round_trips_in_any_case_and_spacing():
    ticket = Ticket.objects.create(subject="Broken order")
    token = targets.record_token(ticket)
    assert token == f"[#T-{ticket.pk}]"
    for typed in (token, f"[# t - {ticket.pk} ]", f"Re: [#t{ticket.pk}] again", f"[ #T -{ticket.pk}]"):
        found = targets.find_record_tokens(typed)
        assert found == [(targets.get_target("ticket"), ticket.pk)], typed


def test_unknown_prefix_and_repeats_are_ignored():
    assert targets.find_record_tokens("[#ZZ-1] [#Q-9]") == []
    assert len(targets.find_record_tokens("[#T-5] Re: [#t-5]")) == 1
    assert targets.strip_record_tokens("Re: [#T-5]  Broken") == "Re: Broken"


def test_plus_address_helpers():
    ticket = Ticket.objects.create(subject="x")
    address = targets.plus_address("Support@example.com", ticket)
    assert address == f"Support+ticket-{ticket.pk}@example.com"
    assert targets.parse_plus_address(address) == (targets.get_target("ticket"), ticket.pk)
    assert targets.parse_plus_address("SUPPORT+TICKET-7@example.com") == (targets.get_target("ticket"), 7)
    assert targets.parse_plus_address("support+news@example.com") is None
    assert targets.parse_plus_address("support+order-3@example.com") is None
    assert targets.base_address(address) == "support@example.com"


def test_ref_header_carries_message_and_record():
    ticket = Ticket.objects.create(subject="x")
    value = targets.ref_header(42, ticket)
    ref = targets.parse_ref_header(value)
    assert ref is not None and ref.message_pk == 42
    assert ref.records == [(targets.get_target("ticket"), ticket.pk)]
    assert targets.parse_ref_header("") is None
    assert targets.parse_ref_header("nothing here") is None


def test_registering_a_clashing_target_is_refused():
    with pytest.raises(targets.TargetError):
        targets.register(JobApplicant, key="ticket", prefix="X", label="x")
    with pytest.raises(targets.TargetError):
        targets.register(JobApplicant, key="other", prefix="T", label="x")
    with pytest.raises(targets.TargetError):
        targets.register(JobApplicant, key="Bad Key", prefix="X", label="x")
