"""Reproducible realistic business mail for the benchmarks, or the public corpus replayed.

`MailGen(seed).message(i)` is message i of a shop's inbox, the same bytes for the same (seed, i):
- customers writing to a shop in Spanish (60 %) or English, many of them again and again (60 % of
  the mail comes from 400 returning customers), 40 % replies in threads (In-Reply-To, References,
  "RE:" subjects) quoting the shop's answer and the history below it, in text and in HTML;
- HTML as Outlook (a Word stylesheet, a span per paragraph, a signature table, the logos of the
  quoted mail embedded again) or Gmail writes it, multipart/alternative with the text, inside
  multipart/related with the inline logos (cid: images); 10 % plain text only, as phones send it;
- UTF-8 (quoted-printable, base64 or 8bit), ISO-8859-1 and Windows-1252 (€, “quotes”), encoded
  words in names and subjects, RFC 2231 file names;
- sizes: median ≈ 30 KB, 20 % with attachments of 50 KB–5 MB (PDF, JPEG, XLSX, DOCX, ZIP),
  1 % above 10 MB (10–20 MB messages); `max_bytes` caps the tail for quick runs.

Attachment bytes come from one seeded random buffer, base64-encoded once and sliced by line, so
40,000 messages take seconds of CPU, not minutes.

`corpus_messages(n)` replays the raw files of ../shared/corpus/ (read where they are at run time,
never copied here); past the first pass each repeat gets a new Message-ID so it is new mail.

Run: .venv/bin/python bench/mailgen.py [--count 40000] [--seed 16] [--max-mb 5] [--corpus]
     [--maildir DIR]   prints the size distribution it produced (and writes a Maildir if asked).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import random
import re
import statistics
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import mailtext as T  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
NOISE_BYTES = 21 * 1024 * 1024  # one random buffer; every attachment is a slice of its base64
LINE = 78  # a base64 line: 76 characters and CRLF, 57 bytes of data
OOXML = "application/vnd.openxmlformats-officedocument"
KINDS = [("application/pdf", "pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", 50),
         ("image/jpeg", "jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", 25),
         (f"{OOXML}.spreadsheetml.sheet", "xlsx", b"PK\x03\x04\x14\x00\x06\x00", 10),
         (f"{OOXML}.wordprocessingml.document", "docx", b"PK\x03\x04\x14\x00\x06\x00", 10),
         ("application/zip", "zip", b"PK\x03\x04\n\x00\x00\x00", 5)]
FILE_NAMES = {"es": ["Factura_Nº_{n}", "Albarán {n}", "Presupuesto_{n}_revisión", "Foto del daño {n}",
                     "Currículum_{n}", "Justificante_transferencia_{n}"],
              "en": ["Invoice_{n}", "Delivery note {n}", "Quote_{n}_rev2", "Photo of damage {n}", "CV_{n}",
                     "Payment_confirmation_{n}"]}
HOT_CUSTOMERS, ALL_CUSTOMERS = 400, 40_000
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


class MailGen:
    def __init__(self, seed: int = 16, max_bytes: int | None = None, to: str = "ventas@tienda-norte.example") -> None:
        self.seed, self.max_bytes, self.to = seed, max_bytes, to
        # no larger than the largest attachment asked for (a capped generator starts faster)
        noise = random.Random(seed).randbytes(min(NOISE_BYTES, max_bytes or NOISE_BYTES) + 4096)
        self._b64 = base64.encodebytes(noise).replace(b"\n", b"\r\n")
        self._lines = len(self._b64) // LINE
        rng = random.Random(seed + 1)
        # each company's logo (PNG-sized: 4-26 KB), encoded once
        self._logos = [self._encoded(b"\x89PNG\r\n\x1a\n", rng.randint(4_000, 26_000), rng)
                       for _ in T.COMPANIES]

    # -- what a message is, cheaply, so a reply can name the mail it answers without building it
    def _customer(self, customer: int) -> dict[str, object]:
        """Who a customer is, the same in every message they write."""
        crng = random.Random(f"{self.seed}/c{customer}")
        lang = "es" if crng.random() < 0.6 else "en"
        who = T.name(crng, lang)
        return {"customer": customer, "lang": lang, "who": who,
                "address": f"{T._slug(who).replace('-', '.')}{customer % 97}@{crng.choice(T.DOMAINS)}",
                "charset": crng.choices(["utf-8", "iso-8859-1", "windows-1252"], [70, 15, 15])[0],
                "client": crng.choices(["outlook", "gmail", "plain"], [45, 45, 10])[0],
                "company": T.COMPANIES[customer % len(T.COMPANIES)]}

    def _meta(self, i: int) -> dict[str, object]:
        rng = random.Random(self.seed * 1_000_003 + i)
        customer = rng.randrange(HOT_CUSTOMERS) if rng.random() < 0.6 else rng.randrange(ALL_CUSTOMERS)
        parent = i - rng.randint(1, 400) if rng.random() < 0.4 and i > 0 else None
        if parent is not None and parent < 0:
            parent = None
        if parent is not None:  # the same customer answering
            customer = int(self._meta(parent)["customer"])  # type: ignore[call-overload]
        who = self._customer(customer)
        subject = T.fill(rng.choice(T.SUBJECTS[str(who["lang"])]), rng)
        when = START + timedelta(seconds=i * 180 + rng.randint(0, 170))
        host = str(who["address"]).split("@")[1]
        return {**who, "rng": rng, "subject": subject, "when": when, "parent": parent,
                "id": f"<{rng.getrandbits(64):016x}.{i}.{self.seed}@{host}>"}

    def _chain(self, meta: dict[str, object], depth: int = 4) -> list[dict[str, object]]:
        """The mail this one answers, newest first, at most `depth` deep."""
        chain, parent = [], meta["parent"]
        while parent is not None and len(chain) < depth:
            older = self._meta(int(parent))  # type: ignore[call-overload]
            chain.append(older)
            parent = older["parent"]
        return chain

    def _body(self, meta: dict[str, object]) -> list[str]:
        rng = random.Random(f"{self.seed}/t{meta['id']}")
        lang = str(meta["lang"])
        return [rng.choice(T.GREETING[lang]), *T.paragraphs(rng, lang, rng.randint(2, 7))]

    def _answer(self, meta: dict[str, object]) -> list[str]:
        rng = random.Random(f"{self.seed}/a{meta['id']}")
        return T.paragraphs(rng, str(meta["lang"]), rng.randint(1, 3), T.ANSWERS)

    # -- MIME
    def _encoded(self, magic: bytes, size: int, rng: random.Random) -> bytes:
        """`size` bytes as base64 lines: the file type's magic, then a slice of the cached noise."""
        count = max(1, (size + 56) // 57)
        start = rng.randrange(0, max(1, self._lines - count))
        first = base64.b64encode((magic + b"\0" * 57)[:57]) + b"\r\n"
        return first + self._b64[(start + 1) * LINE:(start + count) * LINE]

    def _text_part(self, kind: str, text: str, charset: str, rng: random.Random) -> bytes:
        text = _fit(text, charset)
        data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode(charset, "replace")
        weights = [60, 20, 20] if charset == "utf-8" else [80, 0, 20]
        cte = rng.choices(["quoted-printable", "base64", "8bit"], weights)[0]
        if cte == "quoted-printable":
            data = binascii.b2a_qp(data, istext=True)
        elif cte == "base64":
            data = base64.encodebytes(data).replace(b"\n", b"\r\n")
        return (f"Content-Type: text/{kind}; charset=\"{charset}\"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
                .encode() + data + b"\r\n")

    @staticmethod
    def _multipart(subtype: str, parts: list[bytes], rng: random.Random, extra: str = "") -> bytes:
        boundary = f"----=_Part_{rng.getrandbits(48):012x}"
        head = f"Content-Type: multipart/{subtype};{extra}\r\n\tboundary=\"{boundary}\"\r\n\r\n".encode()
        sep = f"--{boundary}\r\n".encode()
        return head + b"".join(sep + part for part in parts) + f"--{boundary}--\r\n".encode()

    def _header(self, value: str, charset: str) -> str:
        return value if value.isascii() else Header(_fit(value, charset), charset).encode()

    def message(self, i: int, subject: str | None = None) -> bytes:
        """Message i; `subject` replaces its Subject (the load bench stamps the delivery time there)."""
        meta = self._meta(i)
        rng: random.Random = meta["rng"]  # type: ignore[assignment]
        lang, charset, client = str(meta["lang"]), str(meta["charset"]), str(meta["client"])
        chain = self._chain(meta)
        who, company = str(meta["who"]), str(meta["company"])
        shop = "Tienda Norte" if lang == "es" else "Northwind Supplies"
        text_lines = [*(x for p in self._body(meta) for x in (p, "")),
                      *T.signature(lang, who, company, rng.randint(100, 999))]
        quoted_text: list[str] = []
        quoted_html = ""
        for older in reversed(chain):  # oldest first, wrapped by each newer one
            stamp = format_datetime(older["when"])  # type: ignore[arg-type]
            answer = self._answer(older)
            inner = [*answer, "", f"{shop}", "", T.WROTE[lang].format(d=stamp, who=older["who"]),
                     *(f"> {line}" for line in [*self._body(older), *quoted_text])]
            quoted_text = inner
            quoted_html = T.quote_html(lang, client == "outlook", shop, stamp, f"RE: {older['subject']}",
                                       T.html_of_text(answer) + T.quote_html(lang, client == "outlook",
                                                                             str(older["who"]), stamp,
                                                                             str(older["subject"]),
                                                                             T.html_of_text(self._body(older))
                                                                             + quoted_html))
        if chain:
            text_lines += ["", T.WROTE[lang].format(d=format_datetime(chain[0]["when"]), who=shop),  # type: ignore[arg-type]
                           *(f"> {line}" for line in quoted_text)]
        text = "\r\n".join(w for line in text_lines for w in (textwrap.wrap(line, 76, break_long_words=False,
                                                                             break_on_hyphens=False) or [""]))
        body = self._text_part("plain", text, charset, rng)
        if client != "plain":
            # Outlook embeds the logos of the quoted mail again with the sender's own
            logos = [self._logos[T.COMPANIES.index(company)]] if rng.random() < 0.7 else []
            if chain and client == "outlook":
                logos.append(self._logos[0])
            cids = [f"image{n:03d}.png@01DC{rng.getrandbits(32):08X}" for n in range(len(logos))]
            sig = T.signature(lang, who, company, rng.randint(100, 999))
            paras = self._body(meta)
            html = (T.outlook_html(charset, paras, sig, cids, quoted_html, T.legal(lang, company))
                    if client == "outlook" else T.gmail_html(paras, sig, cids, quoted_html))
            body = self._multipart("alternative", [body, self._text_part("html", html, charset, rng)], rng)
            if logos:
                images = [f"Content-Type: image/png; name=\"image{n:03d}.png\"\r\nContent-Description: logo\r\n"
                          f"Content-Disposition: inline; filename=\"image{n:03d}.png\"\r\nContent-ID: <{cid}>\r\n"
                          "Content-Transfer-Encoding: base64\r\n\r\n".encode() + data
                          for n, (cid, data) in enumerate(zip(cids, logos, strict=True))]
                body = self._multipart("related", [body, *images], rng, ' type="multipart/alternative";')
        attachments = self._attachments(rng, lang)
        if attachments:
            body = self._multipart("mixed", [body, *attachments], rng)
        return self._headers(meta, chain, rng, subject) + body

    def _attachments(self, rng: random.Random, lang: str) -> list[bytes]:
        roll = rng.random()
        if roll < 0.01:
            sizes = [rng.randint(7_700_000, 14_500_000)]  # 10-20 MB once encoded
        elif roll < 0.20:  # log-normal around 300 KB, within 50 KB - 5 MB; now and then two files
            sizes = [int(min(5 * 1024 * 1024, max(50 * 1024, rng.lognormvariate(12.6, 1.0))))
                     for _ in range(1 if rng.random() < 0.8 else 2)]
        else:
            return []
        if self.max_bytes is not None:
            room = max(50 * 1024, (self.max_bytes - 80 * 1024) * 3 // 4)  # base64 makes 4 bytes of 3
            sizes = [min(size, room // len(sizes)) for size in sizes]
        out = []
        for size in sizes:
            mime, ext, magic, _weight = rng.choices(KINDS, [k[3] for k in KINDS])[0]
            stem = T.fill(rng.choice(FILE_NAMES[lang]), rng)
            name = f"{stem}.{ext}"
            disposition = (f"attachment;\r\n\tfilename=\"{name}\"" if name.isascii() else
                           "attachment;\r\n\tfilename*=utf-8''" + quote(name, safe="._-"))
            out.append(f"Content-Type: {mime}\r\nContent-Disposition: {disposition}\r\n"
                       "Content-Transfer-Encoding: base64\r\n\r\n".encode() + self._encoded(magic, size, rng))
        return out

    def _headers(self, meta: dict[str, object], chain: list[dict[str, object]], rng: random.Random,
                 subject: str | None) -> bytes:
        charset, address = str(meta["charset"]), str(meta["address"])
        if subject is None:
            subject = str(meta["subject"]) if not chain else ("RE: " if meta["client"] == "outlook" else "Re: ") + \
                str(chain[0]["subject"])
        when: datetime = meta["when"]  # type: ignore[assignment]
        host = address.split("@")[1]
        lines = [f"Return-Path: <{address}>",
                 f"Received: from mail-{rng.randint(1, 250)}.{host} (mail-{rng.randint(1, 250)}.{host} "
                 f"[203.0.113.{rng.randint(1, 254)}])\r\n\tby mx.tienda-norte.example (Postfix) with ESMTPS id "
                 f"{rng.getrandbits(40):010X}\r\n\tfor <{self.to}>; {format_datetime(when)}",
                 f"Received: by mail-{rng.randint(1, 250)}.{host} with SMTP id {rng.getrandbits(64):016x};\r\n"
                 f"\t{format_datetime(when - timedelta(seconds=2))}",
                 f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={host}; s=s1; t={int(when.timestamp())};"
                 f"\r\n\th=from:to:subject:date:message-id:mime-version;\r\n\tbh={base64.b64encode(rng.randbytes(32)).decode()};"
                 f"\r\n\tb={base64.b64encode(rng.randbytes(256)).decode()}",
                 f"From: {self._header(str(meta['who']), charset)} <{address}>",
                 f"To: {self.to}", f"Subject: {self._header(subject, charset)}",
                 f"Date: {format_datetime(when)}", f"Message-ID: {meta['id']}", "MIME-Version: 1.0",
                 f"X-Mailer: {rng.choice(T.MAILERS)}"]
        if chain:
            refs = " ".join(str(m["id"]) for m in reversed(chain))
            lines += [f"In-Reply-To: {chain[0]['id']}", f"References: {refs}"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def messages(self, count: int, start: int = 0) -> Iterator[bytes]:
        for i in range(start, start + count):
            yield self.message(i)


def _fit(text: str, charset: str) -> str:
    """What a Latin-1 client writes for the characters Latin-1 lacks (Windows-1252 has them)."""
    if charset != "iso-8859-1":
        return text
    return text.translate({0x20AC: "EUR", 0x201C: '"', 0x201D: '"', 0x2013: "-", 0x2026: "..."})


# -- the public corpus, replayed
def corpus_files(root: Path = CORPUS) -> list[Path]:
    skip = {"LICENSE", "SOURCE.txt", "README.md"}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name not in skip and p.stat().st_size > 0)


_MESSAGE_ID = re.compile(rb"^message-id:[^\r\n]*", re.IGNORECASE | re.MULTILINE)


def corpus_messages(count: int, start: int = 0, root: Path = CORPUS) -> Iterator[bytes]:
    files = corpus_files(root)
    if not files:
        raise FileNotFoundError(f"no raw mail under {root}")
    for i in range(start, start + count):
        data = files[i % len(files)].read_bytes()
        if i >= len(files):  # a repeat: new mail, not a copy the pipeline would rightly merge
            new = f"Message-ID: <replay-{i}@corpus.bench.example>".encode()
            data, found = _MESSAGE_ID.subn(new, data, count=1)
            if not found:
                data = new + b"\r\n" + data
        yield data


def distribution(sizes: list[int], attached: int | None = None) -> str:
    """The size distribution in words: percentiles, shares with attachments and past 10 MB."""
    if not sizes:
        return "no messages"
    ordered = sorted(sizes)
    q = statistics.quantiles(ordered, n=100) if len(ordered) > 1 else [ordered[0]] * 99
    kb = 1024
    return (f"{len(sizes)} messages, {sum(sizes) / kb / kb:.0f} MB: median {statistics.median(ordered) / kb:.1f} KB, "
            f"p10 {q[9] / kb:.1f} KB, p90 {q[89] / kb:.0f} KB, p99 {q[98] / kb:.0f} KB, "
            f"max {ordered[-1] / kb / kb:.1f} MB; "
            f"{sum(s > 50 * kb for s in sizes) / len(sizes):.1%} above 50 KB, "
            f"{sum(s > 10 * kb * kb for s in sizes) / len(sizes):.1%} above 10 MB"
            + (f"; {attached / len(sizes):.1%} with attachments" if attached is not None else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--max-mb", type=float, default=None, help="cap every message at this many MB")
    parser.add_argument("--corpus", action="store_true", help="replay ../shared/corpus instead")
    parser.add_argument("--maildir", type=Path, help="also write the messages into this Maildir's new/")
    args = parser.parse_args()
    started = time.perf_counter()
    source = corpus_messages(args.count) if args.corpus else MailGen(
        args.seed, int(args.max_mb * 1024 * 1024) if args.max_mb else None).messages(args.count)
    if args.maildir:
        (args.maildir / "new").mkdir(parents=True, exist_ok=True)
    sizes, attached = [], 0
    for i, data in enumerate(source):
        sizes.append(len(data))
        attached += b"Content-Disposition: attachment" in data
        if args.maildir:
            (args.maildir / "new" / f"{1_700_000_000 + i}.M{i}.bench").write_bytes(data)
    print(distribution(sizes, attached))
    print(f"generated in {time.perf_counter() - started:.1f} s")


# The old entry point: message(i) of the default generator.
_default: MailGen | None = None


def message(index: int) -> bytes:
    global _default
    if _default is None:
        _default = MailGen()
    return _default.message(index)


if __name__ == "__main__":
    main()
