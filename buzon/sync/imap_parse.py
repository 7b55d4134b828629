"""Pure parsers for the IMAP responses the engine reads: bytes in, typed values out.

aioimaplib hands a command's response over as a list in which text lines are `bytes` and each
literal (a message body) is a `bytearray`. Everything here works on that list, without sockets,
so it is tested directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

FETCH_START = re.compile(rb"^(\d+) FETCH \(")
LITERAL_END = re.compile(rb"\{(\d+)\}$")
_TOKEN = re.compile(rb'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"\[]+(?:\[[^\]]*\][^\s()]*)?))')

_UNESCAPE = re.compile(rb"\\(.)")
_QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*"')

Value = bytes | int | None | list["Value"]


@dataclass
class FetchItem:
    uid: int
    flags: list[str] = field(default_factory=list)
    size: int | None = None
    modseq: int | None = None
    sections: dict[str, bytes] = field(default_factory=dict)  # "BODY[]", "BODY[HEADER]", "BODY[1]"...
    bodystructure: Value = None


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int | None
    uidnext: int | None
    exists: int
    highest_modseq: int | None
    # QRESYNC (RFC 7162): what changed since the (UIDVALIDITY, MODSEQ) the folder was opened with
    changed: list[FetchItem] = field(default_factory=list)  # flags of messages changed since
    vanished: int = 0  # how many messages were expunged since


def _tokens(segments: Sequence[bytes | bytearray]) -> Iterator[tuple[str, bytes]]:
    """Yield (kind, value): kind is "(", ")", "str" (quoted or literal) or "atom"."""
    for segment in segments:
        if isinstance(segment, bytearray):
            yield "str", bytes(segment)
            continue
        for opening, closing, quoted, atom in _TOKEN.findall(LITERAL_END.sub(b"", segment)):
            if opening:
                yield "(", b"("
            elif closing:
                yield ")", b")"
            elif atom:
                yield "atom", atom
            else:
                yield "str", _UNESCAPE.sub(rb"\1", quoted)


def parse_list(segments: Sequence[bytes | bytearray]) -> list[Value]:
    """Parse the first parenthesised list found in `segments` (nested lists become lists)."""
    stack: list[list[Value]] = []
    for kind, value in _tokens(segments):
        if kind == "(":
            stack.append([])
        elif kind == ")":
            if not stack:
                continue
            done = stack.pop()
            if not stack:
                return done
            stack[-1].append(done)
        elif stack:
            stack[-1].append(_atom(value) if kind == "atom" else value)
    return stack[0] if stack else []


def _atom(value: bytes) -> Value:
    if value.upper() == b"NIL":
        return None
    if value.isdigit():
        return int(value)
    return value


def _records(lines: Iterable[bytes | bytearray]) -> Iterator[list[bytes | bytearray]]:
    current: list[bytes | bytearray] | None = None
    for line in lines:
        if isinstance(line, bytes) and FETCH_START.match(line):
            if current is not None:
                yield current
            current = [line[line.index(b"(") :]]
        elif current is not None:
            current.append(line)
    if current is not None:
        yield current


# The usual answers: "(UID u FLAGS (...) RFC822.SIZE s BODY[] {s}", the body, ")" to a body fetch,
# "(UID u RFC822.SIZE s)" to the size fetch of a pass.
_ITEM = rb"[A-Z0-9.]+ (?:\d+|\([^()\"{}]*\))"
_BODY_HEAD = re.compile(rb"\(((?:" + _ITEM + rb" )*)BODY\[\] \{\d+\}", re.IGNORECASE)
_PLAIN_RECORD = re.compile(rb"\(((?:" + _ITEM + rb" )*" + _ITEM + rb")\)", re.IGNORECASE)
_BODY_ITEM = re.compile(rb"([A-Z0-9.]+) (\d+|\([^()\"{}]*\)) ", re.IGNORECASE)


def _body_record(record: list[bytes | bytearray]) -> FetchItem | None:
    """Those usual answers read without the general tokenizer (what parse_list would make of
    them); None for any other shape."""
    if len(record) == 3 and isinstance(record[1], bytearray) and record[2] == b")":
        head = _BODY_HEAD.fullmatch(record[0])
        items = head.group(1) if head else None
    elif len(record) == 1 and not isinstance(record[0], bytearray):
        head = _PLAIN_RECORD.fullmatch(record[0])
        items = head.group(1) + b" " if head else None
    else:
        return None
    if items is None:
        return None
    item = FetchItem(uid=0)
    for key, value in _BODY_ITEM.findall(items):
        name = key.upper()
        if name == b"UID" and value.isdigit():
            item.uid = int(value)
        elif name == b"RFC822.SIZE" and value.isdigit():
            item.size = int(value)
        elif name == b"FLAGS" and value[:1] == b"(":
            item.flags = [flag.decode("utf-8", "replace") for flag in value[1:-1].split()
                          if not flag.isdigit() and flag.upper() != b"NIL"]
        else:
            return None
    if not item.uid:
        return None
    if len(record) == 3:
        item.sections["BODY[]"] = bytes(record[1])
    return item


def parse_fetch(lines: Iterable[bytes | bytearray]) -> list[FetchItem]:
    """FETCH responses that carry a UID (unsolicited flag updates without one are skipped)."""
    items = []
    for record in _records(lines):
        quick = _body_record(record)
        if quick is not None:
            items.append(quick)
            continue
        values = parse_list(record)
        pairs = dict(zip(values[::2], values[1::2], strict=False))
        uid = pairs.get(b"UID")
        if not isinstance(uid, int):
            continue
        item = FetchItem(uid=uid)
        for key, value in pairs.items():
            if not isinstance(key, bytes):
                continue
            name = key.upper()
            if name == b"FLAGS" and isinstance(value, list):
                item.flags = [v.decode("utf-8", "replace") for v in value if isinstance(v, bytes)]
            elif name == b"RFC822.SIZE" and isinstance(value, int):
                item.size = value
            elif name == b"MODSEQ" and isinstance(value, list) and value and isinstance(value[0], int):
                item.modseq = value[0]
            elif name == b"BODYSTRUCTURE":
                item.bodystructure = value
            elif name.startswith(b"BODY[") and isinstance(value, bytes):
                # BODY[]<0> answers a partial BODY[]<0.N>: the origin is not part of the section name
                item.sections[name.decode().split("<")[0]] = value
            elif name.startswith(b"BODY[") and value is None:
                item.sections[name.decode().split("<")[0]] = b""
        items.append(item)
    return items


_CODE = re.compile(rb"\[(UIDVALIDITY|UIDNEXT|HIGHESTMODSEQ) (\d+)\]", re.IGNORECASE)
_EXISTS = re.compile(rb"^(\d+) EXISTS", re.IGNORECASE)


def parse_select(lines: Sequence[bytes | bytearray]) -> FolderStatus:
    codes: dict[bytes, int] = {}
    exists = vanished = 0
    for line in lines:
        if not isinstance(line, bytes):
            continue
        for name, number in _CODE.findall(line):
            codes[name.upper()] = int(number)
        match = _EXISTS.match(line)
        if match:
            exists = int(match.group(1))
        match = _VANISHED.match(line)
        if match:
            vanished += uid_set_size(match.group(1).decode())
    return FolderStatus(
        uidvalidity=codes.get(b"UIDVALIDITY"), uidnext=codes.get(b"UIDNEXT"), exists=exists,
        highest_modseq=codes.get(b"HIGHESTMODSEQ"), changed=parse_fetch(lines), vanished=vanished,
    )


_VANISHED = re.compile(rb"^VANISHED \(EARLIER\) ([\d:,]+)", re.IGNORECASE)


def uid_set_size(spec: str) -> int:
    """How many UIDs an IMAP sequence set such as "1:3,7,9:10" names (5), without listing them."""
    total = 0
    for part in spec.split(","):
        first, _, last = part.partition(":")
        total += abs(int(last) - int(first)) + 1 if last else 1
    return total


def parse_search(lines: Sequence[bytes | bytearray]) -> list[int]:
    """UIDs from a SEARCH answer. aioimaplib passes "SEARCH 1 2 3" on as "1 2 3"; the last line
    is the tagged completion text. With CONDSTORE a "(MODSEQ n)" may follow the numbers."""
    uids: list[int] = []
    for line in lines[:-1]:
        if not isinstance(line, bytes):
            continue
        tokens = line.split(b"(")[0].split()
        if tokens and tokens[0].upper() == b"SEARCH":
            tokens = tokens[1:]
        uids.extend(int(tok) for tok in tokens if tok.isdigit())
    return sorted(set(uids))


def uid_set(uids: Sequence[int]) -> str:
    """Compress sorted UIDs into an IMAP sequence set: [1,2,3,7,9,10] -> "1:3,7,9:10"."""
    ranges: list[str] = []
    start = prev = None
    for uid in sorted(uids):
        if start is None:
            start = prev = uid
        elif uid == prev + 1:  # type: ignore[operator]
            prev = uid
        else:
            ranges.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        ranges.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(ranges)


def paren_depth(line: bytes) -> int:
    """How many parentheses `line` leaves open (negative: closes), not counting any inside a
    quoted string (a file name "report (1).pdf" in a BODYSTRUCTURE)."""
    text = _QUOTED.sub(b"", line) if b'"' in line else line
    return text.count(b"(") - text.count(b")")


def has_new_mail(lines: Iterable[bytes | bytearray]) -> bool:
    """Whether pushed untagged responses (during IDLE) announce a change worth a sync."""
    for line in lines:
        if isinstance(line, bytes) and (b"EXISTS" in line.upper() or b"RECENT" in line.upper()):
            return True
    return False
