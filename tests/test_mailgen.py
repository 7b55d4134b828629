"""bench/mailgen.py, the benches' mail: the same seed gives the same bytes, every message parses
without defects, and a reply names a message that exists (threads are real threads)."""

from __future__ import annotations

import email.policy
from email.parser import BytesParser

from bench.mailgen import MailGen, distribution

parser = BytesParser(policy=email.policy.default)


def test_the_same_seed_gives_the_same_mail_and_another_seed_other_mail() -> None:
    first, again = MailGen(seed=3, max_bytes=300_000), MailGen(seed=3, max_bytes=300_000)
    assert [first.message(i) for i in range(30)] == [again.message(i) for i in range(30)]
    assert MailGen(seed=4, max_bytes=300_000).message(7) != first.message(7)


def test_every_message_parses_and_replies_answer_earlier_mail() -> None:
    gen = MailGen(seed=16, max_bytes=300_000)
    numbers = range(1000, 1120)  # past the first 400, where every message may answer an earlier one
    parsed = [parser.parsebytes(gen.message(i)) for i in numbers]
    ids = [str(m["Message-ID"]) for m in parsed]
    assert len(set(ids)) == len(ids)
    for mail in parsed:
        assert not [d for part in mail.walk() for d in part.defects], mail["Subject"]
        assert mail.get_body(("plain", "html")) is not None
    replies = [(i, m) for i, m in zip(numbers, parsed, strict=True) if m["In-Reply-To"]]
    assert 30 < len(replies) < 70  # about 40 %
    for i, reply in replies[:10]:
        parent = parser.parsebytes(gen.message(int(gen._meta(i)["parent"])))  # type: ignore[call-overload]
        assert str(reply["In-Reply-To"]) == str(parent["Message-ID"])
        assert str(reply["From"]) == str(parent["From"])  # the same customer, answering
    charsets = {part.get_content_charset() for m in parsed for part in m.walk()
                if part.get_content_maintype() == "text"}
    assert {"utf-8", "iso-8859-1", "windows-1252"} <= charsets
    assert any(part["Content-ID"] for m in parsed for part in m.walk())  # inline logos


def test_the_cap_holds_and_the_distribution_says_so() -> None:
    sizes = [len(MailGen(max_bytes=200_000).message(i)) for i in range(60)]
    assert max(sizes) <= 200_000
    assert distribution(sizes, 0).startswith("60 messages")
