"""A realistic mailbox for the benchmarks: mixed plain and HTML mail, 10% with an attachment."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

WORDS = ("pedido factura envío cliente gracias consulta presupuesto entrega devolución pago cuenta "
         "order invoice shipping customer thanks question quote delivery return payment account").split()


def message(index: int) -> bytes:
    rng = random.Random(index)
    msg = EmailMessage()
    msg["From"] = f"Cliente {index % 997} <cliente{index % 997}@example.test>"
    msg["To"] = "ventas@example.test"
    msg["Subject"] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))).capitalize() + f" #{index}"
    msg["Date"] = format_datetime(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=index))
    msg["Message-ID"] = f"<bench-{index}@example.test>"
    paragraphs = ["\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(rng.randint(2, 6)))
                  for _ in range(rng.randint(2, 12))]
    text = "\n\n".join(paragraphs)
    msg.set_content(text)
    if index % 2 == 0:  # half of it also as HTML, as most mail clients send it
        html = "".join(f"<p>{p}</p>" for p in paragraphs)
        msg.add_alternative(f"<html><body style=\"font-family:sans-serif\">{html}</body></html>", subtype="html")
    if index % 10 == 0:  # a scanned page, a small PDF: 5-60 KB
        size = rng.randint(5, 60) * 1024
        msg.add_attachment(rng.randbytes(size), maintype="application", subtype="pdf", filename=f"doc-{index}.pdf")
    return msg.as_bytes().replace(b"\n", b"\r\n")
