# ruff: noqa: S608  # SQL is built from the SOURCES constants' names only; searched text is always a parameter
"""Which conversations a search shows, best first, with bounded work whatever the volume.

Ranking every match of a common word ("pedido" is in most of a shop's mail) reads all of them on
every search: 1.4 s at 300,000 messages, growing with the mail. So a search walks its matches newest
first, which both engines do cheaply (FTS5 reads its index by rowid backwards; PostgreSQL walks the
primary key backwards, checking each entry, or intersects the GIN index with an id range), only
through conversations the user may see (the role rule is a condition on the conversation row, in the
same statement), and ranks the newest ``POOL`` matches of each source: a *round*. A word with fewer
matches than that is ranked whole, wherever in history they are, so a rare word is always found.
For a common word the first page is the best of the recent mail; paging on, once a round's results
are all shown, the next round ranks the next ``POOL`` older matches, leaving out conversations
already shown (those with a match in a newer round), so every matching conversation comes once.

The score of a match is where its words are, weighed as the index's columns are (buzon.search.schema
WEIGHTS on SQLite: subject, then sender and customer, then attachment names, then the text), or
PostgreSQL's ts_rank of its row (the same letters, and how often the words occur); neither reads
statistics of the whole index, so a score costs the same at any volume and stays the same between
pages. (SQLite's bm25() counts every match in the index first: 0.15 s for a common phrase at
1,000,000 messages.)

A round is a window of entry ids per source, ``[low, top)``: the first page of a round finds
``low`` (its ``POOL``-th newest visible match, or 0 when there are fewer) and fixes ``top``, so the
pages of a round are the same set whatever arrives meanwhile. The cursor carries the round, its
windows and the last result's score and conversation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from buzon.search.schema import SOURCES, WEIGHTS, Source
from buzon.search.words import Term, fts5_match, tsquery

#: Matches ranked per source in one round: enough for a few pages of 50 conversations (a bigger pool
#: ranks more of the history at once, and costs in proportion: a user who sees a tenth of the mail
#: walks ten times the pool).
POOL = 500
#: Matches one round reads at most on SQLite, visible or not: a user who sees little of the mail (an
#: agent with a few assigned conversations) has a page in bounded time, the older matches in later
#: rounds, instead of a walk through every match of a common word (a minute at 1,000,000 messages).
SCAN = 10 * POOL
#: Rounds one page may read to fill itself (a round's last results, then the next round's first).
ROUNDS_PER_PAGE = 3
_MAX_ID = 2**63 - 1


class BadCursor(ValueError):
    """A cursor this search did not give."""


@dataclass(frozen=True)
class Window:
    top: int | None  # entries with an id below this (None: any, until the round's first page fixes it)
    low: int | None  # ... and from this one (None: not known yet, the POOL newest below top; 0: all)


@dataclass(frozen=True)
class Position:
    round: int  # 1: the newest matches; later rounds leave out conversations an earlier one showed
    windows: tuple[Window, ...]  # one per source, in SOURCES order
    after: tuple[float, int] | None = None  # the last result shown: (score, conversation id)

    @staticmethod
    def start() -> Position:
        return Position(1, tuple(Window(None, None) for _ in SOURCES))

    def text(self) -> str:
        def n(value: int | None) -> str:
            return "" if value is None else str(value)
        windows = ";".join(f"{n(w.top)}-{n(w.low)}" for w in self.windows)
        after = f"{self.after[0]!r}~{self.after[1]}" if self.after else ""
        return f"{self.round}:{windows}:{after}"

    @staticmethod
    def parse(text: str) -> Position:
        if not text:
            return Position.start()
        try:
            round_text, windows_text, after_text = text.split(":")
            windows = []
            for part in windows_text.split(";"):
                top, low = part.split("-")
                windows.append(Window(_id(top), _id(low)))
            after = None
            if after_text:
                score, pk = after_text.split("~")
                after = (float(score), _id(pk, blank=False))
            found = Position(int(round_text), tuple(windows), after)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            raise BadCursor("Not a cursor this search gave.") from None
        if found.round < 1 or len(found.windows) != len(SOURCES) or (found.round > 1 and None in (
                w.top for w in found.windows)):
            raise BadCursor("Not a cursor this search gave.")
        return found


def _id(text: str, *, blank: bool = True) -> int | None:
    if text == "" and blank:
        return None
    value = int(text)
    if not 0 <= value <= _MAX_ID:
        raise ValueError(text)
    return value


@dataclass(frozen=True)
class Hit:
    """The best-matching row of a conversation: its ``source`` (e.g. "message") and id, and its score
    (higher is better; comparable within one search)."""

    conversation_id: int
    score: float
    source: str
    id: int


def page(terms: Sequence[Term], conversations: QuerySet[Any], position: Position,
         limit: int) -> tuple[list[Hit], Position | None]:
    """Up to ``limit`` conversations among ``conversations`` matching ``terms`` from ``position``,
    and the position after them (None: no more). One query per round read, at most ROUNDS_PER_PAGE."""
    try:
        visible = [_visible(conversations, source) for source in SOURCES]
    except EmptyResultSet:  # a condition that can match nothing (e.g. a user in no store)
        return [], None
    hits: list[Hit] = []
    for _ in range(ROUNDS_PER_PAGE):
        wanted = limit - len(hits)
        found, summary = _round(terms, visible, position, wanted + 1)
        windows = tuple(_settled(w, s) for w, s in zip(position.windows, summary, strict=True))
        hits += found[:wanted]
        if len(found) > wanted:
            last = hits[-1]
            return hits, Position(position.round, windows, (last.score, last.conversation_id))
        if all(w.low == 0 for w in windows):
            return hits, None
        # The next round: the older matches of every source not yet read whole.
        position = Position(position.round + 1, tuple(
            Window(w.low, None) if w.low else Window(0, 0) for w in windows))
        if len(hits) >= limit:
            break
    return hits, position


Summary = tuple[int, int | None, int | None, int | None, int | None, int | None]


def _settled(window: Window, summary: Summary) -> Window:
    """The window a round's first page found: its top fixed, its low known. ``summary``: the
    visible matches kept (count, lowest and highest id) and, on SQLite, the matches read (count,
    lowest and highest id; None where not counted)."""
    count, lowest, highest, read, read_low, read_high = summary
    if window.top is None:
        top = (highest + 1) if count and highest is not None else (read_high + 1) if read and read_high else 0
        window = replace(window, top=top)
    if window.low is None:
        if count >= POOL and lowest is not None:
            low = lowest
        elif read is not None and read >= SCAN and read_low is not None:
            low = read_low  # the reading stopped there: older matches are the next round's
        else:
            low = 0
        window = replace(window, low=low)
    return window


def _visible(conversations: QuerySet[Any], source: Source) -> tuple[str, list[Any]]:
    """``conversations`` as a condition on one source row (``src``): EXISTS of its conversation among
    them, a primary-key look-up per row rather than a list of every visible conversation."""
    rows = conversations.order_by().filter(pk=RawSQL(f"src.{source.conversation}", ())).values("pk")  # noqa: S611  # nosec B611  # a column of the SOURCES constants
    sql, params = rows.query.sql_with_params()
    return f"EXISTS ({sql})", list(params)


def _round(terms: Sequence[Term], visible: list[tuple[str, list[Any]]], position: Position,
           limit: int) -> tuple[list[Hit], list[Summary]]:
    sqlite = connection.vendor == "sqlite"
    match = fts5_match(list(terms)) if sqlite else tsquery(list(terms))
    ctes, params, parts, seen, seen_params = [], [], [], [], []
    few = {} if sqlite else _few_matches(position.windows, match)
    for source, window, (condition, condition_params) in zip(SOURCES, position.windows, visible, strict=True):
        name = source.name
        exhausted = window.top == 0
        if exhausted:
            ctes.append(f"{name}_pool AS (SELECT {'NULL' if sqlite else 'NULL::bigint'} AS id, "
                        f"{'NULL' if sqlite else 'NULL::bigint'} AS cid, "
                        f"{'NULL' if sqlite else 'NULL::float8'} AS score WHERE 1 = 0)")
        else:
            pool, pool_params = _pool(source, window, condition, condition_params, match, sqlite, few.get(name))
            ctes += pool
            params += pool_params
        parts.append(f"SELECT '{name}' AS source, id, cid, score FROM {name}_pool")  # nosec B608  # names from the SOURCES constants; values are parameters
        if position.round > 1:
            assert window.top is not None  # a later round's windows are settled  # noqa: S101
            sql, p = _earlier(source, window.top, match, sqlite)
            seen.append(sql)
            seen_params += p
    if sqlite:
        # SQLite: the bare columns of a MAX() aggregate come from the row that has the maximum.
        best = "SELECT cid, MAX(score) AS score, source, id FROM hits GROUP BY cid"
    else:
        best = "SELECT DISTINCT ON (cid) cid, score, source, id FROM hits ORDER BY cid, score DESC, id DESC"
    where = [f"NOT {sql}" for sql in seen]
    page_params = list(seen_params)
    if position.after is not None:
        where.append("(score < %s OR (score = %s AND cid < %s))")
        page_params += [position.after[0], position.after[0], position.after[1]]
    summaries = " UNION ALL ".join(
        f"SELECT '#{s.name}', count(*), NULL, min(id), max(id), {_reach(s, w)} FROM {s.name}_pool"  # nosec B608  # names from the SOURCES constants
        for s, w in zip(SOURCES, position.windows, strict=True))  # nosec B608  # names from the SOURCES constants; values are parameters
    sql = (f"WITH {', '.join(ctes)}, hits AS ({' UNION ALL '.join(parts)}), best AS ({best}), "  # nosec B608  # names from the SOURCES constants; values are parameters
           f"page AS (SELECT cid, score, source, id FROM best {'WHERE ' + ' AND '.join(where) if where else ''} "
           "ORDER BY score DESC, cid DESC LIMIT %s) "
           f"SELECT source, cid, score, id, NULL, NULL, NULL, NULL FROM page UNION ALL {summaries}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *page_params, limit])
        rows = cursor.fetchall()
    hits = sorted((Hit(int(cid), float(score), str(source), int(pk)) for source, cid, score, pk, *_ in rows
                   if not source.startswith("#")), key=lambda h: (-h.score, -h.conversation_id))
    found: dict[str, Summary] = {
        source[1:]: (int(count), low, high, read, read_low, read_high)
        for source, count, _, low, high, read, read_low, read_high in rows if source.startswith("#")}
    return hits, [found[s.name] for s in SOURCES]


def _reads(source: Source, window: Window, sqlite: bool) -> bool:
    """Whether this round's pool of ``source`` is bounded by a reading of SCAN matches."""
    return sqlite and window.low is None and window.top != 0


def _reach(source: Source, window: Window) -> str:
    sqlite = connection.vendor == "sqlite"
    if _reads(source, window, sqlite):
        read = f"{source.name}_read"
        return f"(SELECT n FROM {read}), (SELECT low FROM {read}), (SELECT high FROM {read})"  # nosec B608  # names from the SOURCES constants
    return "NULL, NULL, NULL"


def _few_matches(windows: Sequence[Window], match: str) -> dict[str, list[int]]:
    """PostgreSQL: for each source whose window has no low bound yet, every match below its top from
    the GIN index, when there are at most SCAN of them (one statement for all sources).

    The planner guesses how many entries a word matches from its statistics of the commonest words;
    for a word outside them it guessed 7,740 of 1,000,000 where there were 187, and walked the
    primary key backwards through every entry looking for 500 (2 s). Asked for at most SCAN + 1
    matches in any order, it reads a rare word's few from the GIN index in a millisecond, and stops
    after SCAN + 1 entries of a common word (30-50 ms at 1,000,000 messages, once per COMMON_FOR),
    whose walk is then fast."""
    asked = [(source, window) for source, window in zip(SOURCES, windows, strict=True)
             if not window.low and window.top != 0]
    # A word found more than SCAN times in the whole index stays so as mail arrives: that answer is
    # kept (per process, COMMON_FOR seconds) and the question not asked again for a first round.
    keys = {source.name: _common_key(source, match) for source, window in asked if window.top is None}
    known_common = set(cache.get_many(list(keys.values()))) if keys else set()
    asked = [(source, window) for source, window in asked if keys.get(source.name) not in known_common]
    parts: list[str] = []
    params: list[Any] = []
    for source, window in asked:
        top = "" if window.top is None else "AND id < %s"
        parts.append(f"(SELECT '{source.name}' AS source, id FROM {source.table_name('postgresql')} "  # nosec B608  # names from the SOURCES constants; values are parameters
                     f"WHERE document @@ {TSQUERY} {top} LIMIT {SCAN + 1})")
        params += [match, match, *([] if window.top is None else [window.top])]
    if not parts:
        return {}
    found: dict[str, list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for name, pk in cursor.fetchall():
            found.setdefault(name, []).append(pk)
    common = [source.name for source, _ in asked if len(found.get(source.name, [])) > SCAN]
    cache.set_many({keys[name]: True for name in common if name in keys}, COMMON_FOR)
    return {source.name: found.get(source.name, []) for source, _ in asked if source.name not in common}


#: How long a word's "more than SCAN matches" is believed without asking (mail deleted meanwhile
#: could make it rare again: its search then walks, slower but right).
COMMON_FOR = 3600


def known_common(source: Source, match: str) -> bool:
    """Whether ``match`` was found more than SCAN times in ``source`` within COMMON_FOR seconds."""
    return bool(cache.get(_common_key(source, match)))


def remember_common(source: Source, match: str) -> None:
    cache.set(_common_key(source, match), True, COMMON_FOR)


def _common_key(source: Source, match: str) -> str:
    digest = hashlib.sha256(match.encode()).hexdigest()[:32]
    return f"buzon-search-common:{connection.alias}:{connection.settings_dict.get('NAME')}:{source.name}:{digest}"


def _pool(source: Source, window: Window, condition: str, condition_params: list[Any], match: str,
          sqlite: bool, known: list[int] | None = None) -> tuple[list[str], list[Any]]:
    """Common table expressions ending in ``<source>_pool`` (id, cid, score): the newest matches of
    ``source`` in ``window`` whose conversation the user may see (at most POOL while the window's
    low end is not known), scored. ``known``: on PostgreSQL, every match in the window, when the
    GIN index gave them (_few_matches)."""
    bounds, params = [], []
    if window.top is not None:
        bounds.append("{id} < %s")
        params.append(window.top)
    if window.low:
        bounds.append("{id} >= %s")
        params.append(window.low)
    # A window whose low end is known holds the POOL matches found by the round's first page; the
    # margin only keeps the statement's shape (walk newest first, stop), which PostgreSQL's planner
    # would otherwise trade for a hash join over every message.
    limit = f"LIMIT {POOL if window.low is None else 4 * POOL}"
    name = source.name
    if sqlite:
        fts = source.table_name("sqlite")
        ranges = [b.format(id="rowid") for b in bounds]
        read, read_params = [], []
        if _reads(source, window, sqlite):
            # The SCAN newest matches' ids alone (FTS5 reads 10,000 in about a millisecond): the
            # walk below goes no further down, whatever the user may see of them.
            read = [f"{name}_read AS MATERIALIZED (SELECT count(*) AS n, min(id) AS low, max(id) AS high FROM ("  # nosec B608  # names from the SOURCES constants; values are parameters
                    f"SELECT rowid AS id FROM {fts} WHERE {' AND '.join([f'{fts} MATCH %s', *ranges])} "
                    f"ORDER BY rowid DESC LIMIT {SCAN}))"]
            read_params = [match, *params]
            bounds = [*bounds, f"{{id}} >= (SELECT low FROM {name}_read)"]  # nosec B608  # names from the SOURCES constants
        where = " AND ".join([f"{fts} MATCH %s", *(b.format(id="f.rowid") for b in bounds), condition])
        # Ordered by rowid, which FTS5 reads backwards from its index without looking at the rest.
        newest = (f"{name}_newest AS MATERIALIZED (SELECT f.rowid AS id, src.{source.conversation} AS cid "  # nosec B608  # names from the SOURCES constants; values are parameters
                  f"FROM {fts} f JOIN {source.table} src ON src.id = f.rowid WHERE {where} "
                  f"ORDER BY f.rowid DESC {limit})")
        # The score: 1, plus 10 if the words are all in the subject, 4 in the sender or customer, 2
        # in an attachment's name; each a column-filtered search of the pool's id range, which FTS5
        # answers from its index in about a millisecond for whole words and phrases.
        fields, field_params = [], []
        # Not for a prefix ("devol*"): FTS5 reads every word it begins, in the whole index, for
        # each search of it (70 ms for one common stem at 1,000,000 messages): its newest first.
        letters = sorted({w for _, w in source.columns} - {"D"}) if "*" not in match else []
        for letter in letters:
            columns = " ".join(c for c, w in source.columns if w == letter)
            fields.append(f"SELECT rowid AS id, {WEIGHTS[letter]} AS w FROM {fts} WHERE {fts} MATCH %s "  # nosec B608  # names from the SOURCES constants; values are parameters
                          f"AND rowid >= (SELECT min(id) FROM {name}_newest) "
                          f"AND rowid <= (SELECT max(id) FROM {name}_newest)")
            field_params.append(f"{{{columns}}} : ({match})")
        scored = (f"{name}_fields AS MATERIALIZED ({' UNION ALL '.join(fields)}), "  # nosec B608  # names from the SOURCES constants; values are parameters
                  f"{name}_pool AS (SELECT n.id, n.cid, 1.0 + coalesce(sum(f.w), 0) AS score FROM {name}_newest n "
                  f"LEFT JOIN {name}_fields f ON f.id = n.id GROUP BY n.id, n.cid)")
        if not fields:
            scored = f"{name}_pool AS (SELECT id, cid, 1.0 AS score FROM {name}_newest)"  # nosec B608  # names from the SOURCES constants
        return [*read, newest, scored], [*read_params, match, *params, *condition_params, *field_params]
    document = source.table_name("postgresql")
    if known is not None:  # looked up by id: no walk, whatever the planner thinks of the word
        bounds, params = ["{id} = ANY(%s)"], [known]  # type: ignore[list-item]  # an array parameter
    where = " AND ".join([f"d.document @@ {TSQUERY}", *(b.format(id="d.id") for b in bounds),
                          *(b.format(id="src.id") for b in bounds), condition])
    # ts_rank (of the row alone: no statistics of the index) only for the rows kept.
    return ([f"{name}_pool AS MATERIALIZED (SELECT id, cid, ts_rank(document, {TSQUERY})::float8 AS score FROM ("  # nosec B608  # names from the SOURCES constants; values are parameters
             f"SELECT d.id, src.{source.conversation} AS cid, d.document FROM {document} d "
             f"JOIN {source.table} src ON src.id = d.id WHERE {where} ORDER BY d.id DESC {limit}) newest)"],
            [match, match, match, match, *params, *params, *condition_params])


#: The query of PostgreSQL's Spanish and English dictionaries, written where it is used so that the
#: planner sees its words (and their frequency) when it chooses between the GIN index and the order.
TSQUERY = "(to_tsquery('spanish', %s) || to_tsquery('english', %s))"


def _earlier(source: Source, top: int, match: str, sqlite: bool) -> tuple[str, list[Any]]:
    """Whether a conversation (``best.cid``) has a match of ``source`` with an id from ``top``: it
    was shown in an earlier round. Its few rows by the conversation's index, each looked up."""
    if sqlite:
        fts = source.table_name("sqlite")
        return (f"EXISTS (SELECT 1 FROM {source.table} o JOIN {fts} ON {fts}.rowid = o.id "  # nosec B608  # names from the SOURCES constants; values are parameters
                f"WHERE o.{source.conversation} = best.cid AND o.id >= %s AND {fts} MATCH %s)", [top, match])
    document = source.table_name("postgresql")
    return (f"EXISTS (SELECT 1 FROM {source.table} o JOIN {document} od ON od.id = o.id "  # nosec B608  # names from the SOURCES constants; values are parameters
            f"WHERE o.{source.conversation} = best.cid AND o.id >= %s AND od.document @@ {TSQUERY})",
            [top, match, match])
