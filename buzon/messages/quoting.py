"""Where the quoted history of a plain-text mail begins, so the thread shows each message's own words
and folds what it quotes (the previous messages, already in the thread above it).

Mail clients quote in two ways: lines starting with ">" after an attribution line ("On Tue, Ana
wrote:", "El mar., Ana escribió:"), and Outlook's header block ("-----Original Message-----",
"From: ... Sent: ..."/"De: ... Enviado: ..."). The fold starts at the attribution (or the first
quoted line) of the last quoted block that runs to the end, ignoring trailing blank lines and
signatures' "-- " lines, so a reply written *between* quotes (inline answers) is never hidden.
Nothing is removed: the folded part is shown on request.
"""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(
    r"^\s*(On\b.{0,200}\bwrote:|El\b.{0,200}\bescribi[oó]:|Le\b.{0,200}\ba écrit ?:|Am\b.{0,200}\bschrieb.{0,40}:)\s*$",
    re.IGNORECASE)
_OUTLOOK = re.compile(r"^\s*(-{2,}\s*(Original Message|Mensaje original|Forwarded message|Mensaje reenviado)\s*-{2,}"
                      r"|_{10,})\s*$", re.IGNORECASE)
_HEADER_FROM = re.compile(r"^\s*(From|De):\s", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\s*(Sent|Enviado|Date|Fecha|To|Para):\s", re.IGNORECASE)


def split_quoted(text: str) -> tuple[str, str]:
    """(the message's own words, the quoted history at its end); the second is "" when none."""
    lines = text.splitlines(keepends=True)
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    # Outlook style: everything from the separator (or From:/Sent: header pair) on is history.
    for index in range(end):
        line = lines[index]
        if _OUTLOOK.match(line) or (_HEADER_FROM.match(line) and index + 1 < end
                                    and _HEADER_NEXT.match(lines[index + 1])):
            return _cut(lines, index)
    # ">" style: the last run of quoted lines must reach the end.
    index = end
    while index and (lines[index - 1].lstrip().startswith(">") or not lines[index - 1].strip()):
        index -= 1
    if index == end:
        return text, ""
    while index < end and not lines[index].strip():
        index += 1
    start = index
    previous = start - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous >= 0 and _ATTRIBUTION.match(lines[previous]):
        start = previous
    elif previous >= 1 and _ATTRIBUTION.match(f"{lines[previous - 1].strip()} {lines[previous].strip()}"):
        start = previous - 1  # an attribution wrapped over two lines
    return _cut(lines, start)


def _cut(lines: list[str], index: int) -> tuple[str, str]:
    own = "".join(lines[:index]).rstrip()
    if not own:  # nothing but quotes (a forward without a word): nothing to fold
        return "".join(lines), ""
    return own, "".join(lines[index:]).strip("\n")
