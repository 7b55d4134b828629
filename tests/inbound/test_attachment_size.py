"""An attachment's size, as the pipeline stores it (buzon.inbound.mail.parse), is the length of the
bytes a person downloads (parse.part_bytes; an enclosed message aside): counted from valid base64
without decoding it, decoded and measured for anything else (broken padding, stray characters,
spaces, 8-bit bytes), on the shared corpus, on generated business mail and on any payload."""

from __future__ import annotations

import base64
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.mailgen import MailGen
from buzon.inbound.mail import parse


def _sizes_are_the_download_lengths(data: bytes) -> int:
    try:
        mail = parse.parse_bytes(data)
    except parse.Unparseable:
        return 0
    for attachment in mail.attachments:
        if attachment.content_type in parse.ATTACHED_MESSAGES:  # an enclosed message: sized as a message
            continue
        found = parse.part_bytes(data, attachment.part)
        assert found is not None and attachment.size == len(found[0]), attachment
    return len(mail.attachments)


def _message(payload: bytes, cte: str = "base64") -> bytes:
    return (b"From: ana@customer.test\r\nSubject: Factura\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nAdjunto.\r\n'
            b'--b1\r\nContent-Type: application/pdf; name="f.pdf"\r\nContent-Disposition: attachment; '
            b'filename="f.pdf"\r\nContent-Transfer-Encoding: ' + cte.encode() + b"\r\n\r\n" + payload
            + b"\r\n--b1--\r\n")


def test_every_corpus_attachment_has_its_download_length(corpus: Path) -> None:
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix != ".md")
    assert sum(_sizes_are_the_download_lengths(path.read_bytes()) for path in files) > 500


def test_generated_business_mail_attachments_have_their_file_length() -> None:
    gen, counted = MailGen(seed=7, max_bytes=300_000), 0
    for i in range(60):
        counted += _sizes_are_the_download_lengths(gen.message(i))
    assert counted > 30


@settings(max_examples=300, deadline=None)
@given(content=st.binary(max_size=400), width=st.sampled_from([76, 64, 4, 1000]),
       line_end=st.sampled_from([b"\r\n", b"\n"]),
       damage=st.sampled_from([None, b" ", b"*", b"=", b"==", b"===", b"\xe9", b"\t", b"-_"]),
       at=st.floats(0, 1), cut=st.integers(0, 3))
def test_any_base64_payload_counts_as_it_decodes(content: bytes, width: int, line_end: bytes,
                                                  damage: bytes | None, at: float, cut: int) -> None:
    text = base64.b64encode(content)
    text = text[:len(text) - cut]  # padding or data missing
    if damage is not None:
        where = int(len(text) * at)
        text = text[:where] + damage + text[where:]
    payload = line_end.join(text[i:i + width] for i in range(0, len(text), width))
    data = _message(payload).replace(b"\r\n", line_end)
    assert _sizes_are_the_download_lengths(data) == 1
    if damage is None and cut == 0:
        assert parse.parse_bytes(data).attachments[0].size == len(content)


def test_other_encodings_are_measured_decoded() -> None:
    for payload, cte, size in ((b"caf=C3=A9=\r\nx", "quoted-printable", 6), (b"raw bytes", "8bit", 9),
                               (b"QUJD", "BASE64", 3), (b"QUJD\r\nRA==", "base64", 4), (b"", "base64", 0)):
        data = _message(payload, cte)
        assert _sizes_are_the_download_lengths(data) == 1
        assert parse.parse_bytes(data).attachments[0].size == size, (payload, cte)
