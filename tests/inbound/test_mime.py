"""buzon.inbound.mail.mime builds the very tree the standard parser builds, on every message of the
shared corpus of real-world mail, on generated business mail, and on the structures where the two
could part (boundaries, preambles, epilogues, line ends); and it reads clean mail itself, so the
pipeline does not pay the standard parser's line-by-line loop for every attachment."""

from __future__ import annotations

import email.parser
import email.policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.mailgen import MailGen
from buzon.inbound.mail import mime

STANDARD = email.parser.BytesParser(policy=email.policy.compat32)


def shape(message: Message) -> tuple[Any, ...]:
    """Everything the parser decides, as stored (``_payload``: get_payload() would decode it)."""
    payload = message._payload
    return (message.get_unixfrom(), list(message._headers), message.preamble, message.epilogue,
            [type(defect).__name__ for defect in message.defects], message.get_default_type(),
            [shape(part) for part in payload] if isinstance(payload, list) else payload)


def fast(data: bytes) -> bool:
    """Whether mime reads ``data`` itself rather than handing it to the standard parser."""
    try:
        mime._part(data)
    except mime._Doubt:
        return False
    return data.count(b"\r") == data.count(b"\r\n")


def same(data: bytes) -> None:
    assert shape(mime.parse(data)) == shape(STANDARD.parsebytes(data))


def test_every_corpus_message_gets_the_standard_parsers_tree(corpus: Path) -> None:
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix != ".md")
    assert len(files) > 800
    read_here = 0
    for path in files:
        data = path.read_bytes()
        assert shape(mime.parse(data)) == shape(STANDARD.parsebytes(data)), path
        read_here += fast(data)
    # Most of the corpus is bounce reports (message/delivery-status, message/rfc822 parts), which the
    # standard parser reads; the rest (285 of 893 files) is read here.
    assert read_here > 250


def test_generated_business_mail_is_read_here_and_gives_the_same_tree() -> None:
    messages = list(MailGen(seed=11, max_bytes=1 << 20).messages(150))
    assert sum(b"Content-Disposition: attachment" in m for m in messages) > 10
    for data in messages:
        same(data)
        assert fast(data)


BOUNDARY = b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"


def multipart(body: bytes, head: bytes = BOUNDARY) -> bytes:
    return b"From: a@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n" + head + b"\r\n" + body


@pytest.mark.parametrize("body", [
    pytest.param(b"preamble line\r\n\r\n--b1\r\n\r\nfirst\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n"
                 b"--b1--\r\nepilogue\r\n", id="preamble-and-epilogue"),
    pytest.param(b"--b1\r\n\r\nno preamble\r\n--b1--", id="closing-boundary-at-the-end-without-line-end"),
    pytest.param(b"--b1  \t\r\n\r\ntrailing blanks after the boundary\r\n--b1-- \r\n", id="boundary-blanks"),
    pytest.param(b"--b1\r\n\r\n--b1x is text, not a boundary\r\n --b1\r\n--b1--\r\n", id="boundary-look-alikes"),
    pytest.param(b"--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\ninner preamble\r\n--b2\r\n\r\n"
                 b"plain\r\n--b2\r\nContent-Type: text/html\r\n\r\nhtml\r\n--b2--\r\ninner epilogue\r\n\r\n--b1\r\n"
                 b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b1--\r\n",
                 id="nested-multipart"),
    pytest.param(b"--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n--b2\r\n\r\nplain\r\n--b2--\r\n"
                 b"--b1--\r\n", id="nested-empty-epilogue"),
    pytest.param(b"--b1\n\nunix line ends\n--b1\nContent-Type: text/html\n\n<p>x</p>\n--b1--\n", id="lf-only"),
    pytest.param(b"--b1\r\n\r\nlatin-1 caf\xe9 and utf-8 caf\xc3\xa9\r\n--b1--\r\n", id="eight-bit"),
    pytest.param(b"--b1\r\n\r\nold lone\rcarriage return\r\n--b1--\r\n", id="lone-cr"),
    pytest.param(b"--b1\r\n--b1\r\n\r\ntwo boundaries in a row\r\n--b1--\r\n", id="double-boundary"),
    pytest.param(b"--b1\r\n\r\nthe closing boundary never comes\r\n", id="no-closing-boundary"),
    pytest.param(b"no boundary at all\r\n", id="no-boundary"),
    pytest.param(b"--b1--\r\n\r\nclosing first\r\n", id="closing-first"),
    pytest.param(b"--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nforwarded\r\n--b1--\r\n",
                 id="enclosed-message"),
    pytest.param(b"--b1\r\nContent-Type: text/plain\r\n--b1--\r\n", id="part-without-blank-line"),
    pytest.param(b"--b1\r\nnot a header line\r\n\r\nbody\r\n--b1--\r\n", id="part-missing-blank-line"),
    pytest.param(b"--b1\r\nX: 1\r\nFrom nobody\r\n\r\nbody\r\n--b1--\r\n", id="envelope-line-last-in-headers"),
])
def test_structures_where_the_two_could_part(body: bytes) -> None:
    same(multipart(body))


@pytest.mark.parametrize("head", [
    b"Content-Type: multipart/digest; boundary=b1\r\n",
    b"Content-Type: multipart/mixed\r\n",
    b"Content-Type: multipart/mixed; boundary=b1\r\nContent-Transfer-Encoding: base64\r\n",
    b"Content-Type: multipart/mixed; boundary*=utf-8''%C3%A9\r\n",
    b"Content-Type: text/plain\r\n",
    b"Content-Type: message/rfc822\r\n",
])
def test_headers_that_change_how_the_body_is_read(head: bytes) -> None:
    same(multipart(b"--b1\r\n\r\nx\r\n--b1--\r\n", head))
    same(multipart("--\u00e9\r\n\r\nx\r\n--\u00e9--\r\n".encode(), head))


def test_messages_without_a_body_or_headers() -> None:
    for data in (b"Subject: only headers\r\n", b"Subject: x\r\n\r\n", b"\r\nbody without headers\r\n",
                 b"From sender@example.test Mon Jan 1 00:00:00 2026\r\nSubject: x\r\n\r\nbody\r\n",
                 b"Subject: x\n\r\nmixed line ends\r\n"):
        same(data)


def test_clean_mail_is_read_here() -> None:
    assert fast(multipart(b"--b1\r\n\r\nfirst\r\n--b1--\r\n"))
    assert fast(b"Subject: x\r\n\r\nbody\r\n")
    assert not fast(multipart(b"--b1\r\n\r\nfirst\r\n"))  # no closing boundary: the standard parser


PIECES = [b"--b1\r\n", b"--b1--\r\n", b"--b1", b"--b1 \r\n", b"--b2\r\n", b"--b2--\r\n", b"--b1x\r\n", b"\r\n", b"\n",
          b"text\r\n", b"text\n", b"text", b"caf\xe9\r\n", b"lone\rcr\r\n", b"\r", b"From me\r\n",
          b"Content-Type: text/plain\r\n", b"Content-Type: text/html; charset=utf-8\r\n",
          b"Content-Type: multipart/alternative; boundary=b2\r\n", b"Content-Type: message/rfc822\r\n",
          b"Content-Transfer-Encoding: base64\r\n", b"JVBERi0xLjQK\r\n", b" folded\r\n", b": no name\r\n",
          b"X-A: 1\n"]


@given(st.lists(st.sampled_from(PIECES), max_size=30), st.sampled_from([BOUNDARY, b"Content-Type: text/plain\r\n"]))
@settings(max_examples=1500, deadline=None)
def test_any_arrangement_of_boundaries_headers_and_line_ends_gets_the_same_tree(pieces: list[bytes],
                                                                                  head: bytes) -> None:
    same(multipart(b"".join(pieces), head))


def _entity(rng: Any, depth: int = 0) -> bytes:
    """A MIME entity built the way mail programs build them, with the slips they make: LF or CRLF,
    blanks after a boundary, text that looks like a boundary, a preamble, an epilogue, 8-bit bytes."""
    end = rng.choice([b"\r\n", b"\r\n", b"\n"])
    lines = [rng.choice([b"text", b"caf\xe9 \xc3\xa9", b"--b%d" % depth + b"x", b" --b0", b"JVBERi0xLjQK", b""])
             for _ in range(rng.randint(0, 4))]
    if depth >= 3 or rng.random() < 0.4:
        head = rng.choice([b"", b"Content-Type: text/plain; charset=utf-8" + end,
                           b"Content-Type: text/html" + end + b"Content-Transfer-Encoding: 8bit" + end,
                           b"Content-Type: application/pdf; name=a.pdf" + end + b"X-Folded: a" + end + b" b" + end])
        return head + end + end.join(lines) + rng.choice([end, b""])
    boundary = b"b%d" % depth
    out = [b"Content-Type: multipart/" + rng.choice([b"mixed", b"alternative", b"related"]) + b"; boundary=\""
           + boundary + b"\"" + end + end]
    if rng.random() < 0.5:
        out.append(end.join(lines) + end)
    for _ in range(rng.randint(1, 3)):
        out.append(b"--" + boundary + rng.choice([b"", b" ", b"\t "]) + end)
        child = _entity(rng, depth + 1)
        out.append(child if child.endswith(end) else child + end)
    out.append(b"--" + boundary + b"--" + rng.choice([b"", b"  "]) + rng.choice([end, end, b""]))
    if rng.random() < 0.5 and out[-1].endswith(b"\n"):
        out.append(end.join(lines))
    return b"".join(out)


@given(st.randoms(use_true_random=False))
@settings(max_examples=1500, deadline=None)
def test_any_well_built_message_is_read_here_to_the_same_tree(rng: Any) -> None:
    data = b"From: a@example.test\r\nSubject: x\r\n" + _entity(rng)
    same(data)
