"""The mail-target registry: tokens, plus addresses and the X-Buzon-Ref header."""

import pytest
from django.test import override_settings

from buzon.crm.models import Customer, JobApplicant, Ticket
from buzon.messages import outbox, targets

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
    tag = targets.record_tag(targets.get_target("ticket"), ticket.pk)
    assert token == f"[#T-{ticket.pk}-{tag}]" and len(tag) == targets.TAG_LENGTH
    for typed in (token, f"[# t - {ticket.pk} ]", f"Re: [#t{ticket.pk}] again", f"[ #T -{ticket.pk}]",
                  f"[# t - {ticket.pk} - {tag.upper()} ]"):
        found = targets.find_record_tokens(typed)
        assert found == [(targets.get_target("ticket"), ticket.pk)], typed


def test_tags_are_the_records_own_and_checked():
    """A tag is an HMAC of the target and id keyed from SECRET_KEY: another record's, a guessed one or
    a missing one is not valid; typed in upper case it still is (base32 is read in any case)."""
    one, two = Ticket.objects.create(subject="a"), Ticket.objects.create(subject="b")
    ticket = targets.get_target("ticket")
    tag_one, tag_two = targets.record_tag(ticket, one.pk), targets.record_tag(ticket, two.pk)
    assert tag_one != tag_two and targets.record_tag(targets.get_target("customer"), one.pk) != tag_one
    [named] = targets.find_tokens(f"Re: [#T-{one.pk}-{tag_one.upper()}]")
    assert named.tag_valid
    assert not targets.find_tokens(f"[#T-{one.pk}-{tag_two}]")[0].tag_valid
    assert not targets.find_tokens(f"[#T-{one.pk}-aaaaaaaa]")[0].tag_valid
    assert not targets.find_tokens(f"[#T-{one.pk}]")[0].tag_valid
    with override_settings(SECRET_KEY="another-installation-" + "x" * 40):
        assert targets.record_tag(ticket, one.pk) != tag_one


def test_outgoing_subject_carries_the_tagged_token_and_replaces_an_old_one():
    ticket = Ticket.objects.create(subject="x")
    token = targets.record_token(ticket)
    assert outbox._subject_with_token("Hola", ticket) == f"Hola {token}"
    assert outbox._subject_with_token(f"Re: Hola [#T-{ticket.pk}]", ticket) == f"Re: Hola {token}"
    assert outbox._subject_with_token(f"Re: Hola {token}", ticket) == f"Re: Hola {token}"
    assert outbox._subject_with_token("Re: [#T-999999] Hola", ticket) == f"Re: [#T-999999] Hola {token}"


def test_unknown_prefix_and_repeats_are_ignored():
    assert targets.find_record_tokens("[#ZZ-1] [#Q-9]") == []
    assert len(targets.find_record_tokens("[#T-5] Re: [#t-5]")) == 1
    assert targets.strip_record_tokens("Re: [#T-5]  Broken") == "Re: Broken"
    assert targets.strip_record_tokens("Re: [#T-5-abcdefgh] Broken") == "Re: Broken"


def test_plus_address_helpers():
    ticket = Ticket.objects.create(subject="x")
    address = targets.plus_address("Support@example.com", ticket)
    tag = targets.record_tag(targets.get_target("ticket"), ticket.pk)
    assert address == f"Support+ticket-{ticket.pk}-{tag}@example.com"
    assert targets.parse_plus_address(address) == (targets.get_target("ticket"), ticket.pk)
    assert targets.parse_plus(address).tag_valid and not targets.parse_plus(f"s+ticket-{ticket.pk}@e.test").tag
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
