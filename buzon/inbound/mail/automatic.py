"""Auto-replies, bulk and list mail: what must never be answered automatically (RFC 3834)."""

from __future__ import annotations

import re

from buzon.inbound.mail.parse import ParsedMail

# Out-of-office subjects of clients that send no Auto-Submitted header (Outlook, Gmail vacation
# responder in some setups, Spanish and German Exchange installations).
_OOO_SUBJECT_RE = re.compile(
    r"^(automatic reply|auto(matic)?[- ]?(reply|response)|out of (the )?office|respuesta autom[aá]tica|"
    r"fuera de la oficina|abwesenheitsnotiz|automatische antwort|r[ée]ponse automatique|absence)\b",
    re.I,
)
_NO_REPLY_RE = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer-daemon|postmaster|bounces?|notifications?)[+@-]", re.I
)


def auto_reply_reason(mail: ParsedMail) -> str:
    """Why ``mail`` is an automatic reply, or "" when a person wrote it."""
    auto_submitted = mail.header("auto-submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted}"
    if "feedback-report" in " ".join(mail.headers.get("content-type", [])).lower():
        return "abuse feedback report (RFC 5965)"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        if mail.header(name):
            return f"{name} header"
    if mail.header("x-auto-response-suppress").lower() in ("all", "oof, autoreply", "autoreply") and \
            _OOO_SUBJECT_RE.search(mail.subject):
        return "Exchange out-of-office"
    if _OOO_SUBJECT_RE.search(mail.subject):
        return "out-of-office subject"
    return ""


def bulk_reason(mail: ParsedMail) -> str:
    precedence = mail.header("precedence").lower()
    if precedence in ("bulk", "junk"):
        return f"Precedence: {precedence}"
    return ""


def list_reason(mail: ParsedMail) -> str:
    for name in ("list-id", "list-post", "mailing-list"):
        if mail.header(name):
            return f"{name} header"
    if mail.header("precedence").lower() == "list":
        return "Precedence: list"
    return ""


def is_no_reply_address(address: str) -> bool:
    return bool(_NO_REPLY_RE.match(address or ""))
