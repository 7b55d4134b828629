"""Forged values in every field that parses one: a date that is well formed but impossible (month
13, or year 1 at +05:00, which has no UTC) and a number too big for a database column are refused as
bad input (400) or answered as missing (404), never a 500, and change nothing."""

from __future__ import annotations

import pytest

from buzon.messages.conversations import Conversation
from tests.security.conftest import World

pytestmark = pytest.mark.django_db
BAD_DAY = "2026-13-45T10:00:00+00:00"
HUGE = "9" * 25
# Well formed and possible, but past the end of what a date holds once shifted to UTC (or stepped back from).
EDGE_DAYS = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+00:00"]


def test_impossible_dates_and_huge_numbers_are_bad_input(world: World):
    ana = world.client("agent_a")
    conversation = world.a.message.conversation
    assert conversation is not None
    gets = [f"/conversations/?before={BAD_DAY}~1", f"/conversations/?after={BAD_DAY}~1",
            f"/api/v1/conversations/?before={BAD_DAY}~1", f"/customers/{world.a.customer.pk}/?before={BAD_DAY}~1",
            f"/job-applicants/{world.a.applicant.pk}/?before={BAD_DAY}~1", f"/notifications/?before={BAD_DAY}~1",
            f"/inbox/?before={BAD_DAY}~1", f"/conversations/{conversation.pk}/changes/?since={BAD_DAY}",
            f"/conversations/changes/?since={BAD_DAY}~abc", f"/conversations/?store={HUGE}",
            f"/conversations/?customer={HUGE}", f"/api/v1/conversations/?agent={HUGE}",
            f"/api/v1/search/?q=Fotos&store={HUGE}", f"/conversations/?q=Fotos&cursor=1.0~{HUGE}",
            f"/api/v1/search/?q=Fotos&cursor=1.0~{HUGE}", f"/api/v1/canned-responses/?store={HUGE}",
            f"/inbox/?before=2026-01-01T00:00:00+00:00~{HUGE}"]
    for day in EDGE_DAYS:
        lists = ("/customers/", "/tickets/", "/job-applicants/", "/conversations/")
        gets += [f"{path}?{field}={day}~1" for path in lists for field in ("before", "after")]
        gets += [f"/conversations/changes/?since={day}~abc", f"/conversations/{conversation.pk}/changes/?since={day}"]
    for path in gets:
        status = ana.get(path.replace("+", "%2B")).status_code
        assert status in (200, 400, 404), (path, status)
    before = Conversation.objects.get(pk=conversation.pk).status
    for path, body in [(f"/api/v1/conversations/{conversation.pk}/status/",
                        {"status": "closed", "seen_incoming_at": BAD_DAY}),
                       ("/api/v1/conversations/bulk/", {"ids": [conversation.pk], "action": "status",
                                                        "status": "closed",
                                                        "seen_incoming_at": {str(conversation.pk): BAD_DAY}}),
                       ("/api/v1/notifications/read/", {"ids": [int(HUGE)]})]:
        status = ana.post(path, body, content_type="application/json").status_code
        assert status in (200, 400, 404), (path, status)
    web = ana.post(f"/conversations/{conversation.pk}/status/", {"status": "closed", "seen_incoming_at": BAD_DAY})
    assert web.status_code == 302
    assert Conversation.objects.get(pk=conversation.pk).status == before
