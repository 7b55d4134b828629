# ruff: noqa: S608  # SQL is built from the SOURCES constants' names only; searched text is always a parameter
"""The search index in the database: tables, triggers and the SQL that fills them, per engine.

What is searched is described as data, a ``Source`` per kind of row (messages; internal notes are
one more Source and one migration calling ``install``). Each source is a view in the database
(``search_<name>_source``) giving a row's text columns, and a trigger on its table, and on the tables
its text comes from (a customer's name, attachments' names), writes the row's index entry in the
same statement, so the index is current in the same transaction as the row whatever wrote it
(``Message.save``, the pipeline's bulk inserts, a queryset ``update``, a merge, a deletion).

- SQLite: an FTS5 table ``search_<name>_fts`` (tokenizer ``unicode61 remove_diacritics 2``: accents
  folded; it keeps its own copy of the text, so an entry can be deleted by rowid whatever the row
  looks like now).
- PostgreSQL: a table ``search_<name>_document`` (id, tsvector) with a GIN index; the tsvector holds
  each column's words in Spanish and in English (stemmed by both dictionaries), folded by
  ``search_fold`` (as ``buzon.search.words.fold`` folds a word; no extension needed) and weighted
  per column. Only a message's first ``BODY_CHARS`` characters of text are indexed. Rows inserted
  or deleted are indexed per statement (transition tables): a bulk insert of a chunk's messages
  folds and stems them in one INSERT … SELECT; an update re-indexes its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from buzon.search.words import combining_marks

#: How much of a message's text is indexed: its first 10,000 characters (about 1,500 words). What
#: follows is mostly the quoted history of earlier messages, indexed as those messages; on PostgreSQL
#: indexing costs about 0.5 ms per KB of text (two dictionaries), so a bound keeps a long message's
#: insert cheap.
BODY_CHARS = 10_000

#: What a match in a column of each letter adds to its score on SQLite (buzon.search.ranking; PostgreSQL's
#: ts_rank weighs the letters its own way: 1, .4, .2, .1).
WEIGHTS = {"A": 10.0, "B": 4.0, "C": 2.0, "D": 1.0}


@dataclass(frozen=True)
class Dependent:
    """Another table whose rows feed a source's text: when ``columns`` of one of its rows change (or
    it is added or deleted), the source rows whose ``key`` equals the row's ``value`` are re-indexed.

    ``feeds``: the one column of the source these rows' text goes to. Where it is the source's last
    column and no other column has its weight letter, PostgreSQL re-indexes that column alone
    (``_postgres_after``) instead of the whole row: a message's attachments do not fold and stem its
    body again for each attachment row inserted."""

    table: str
    columns: tuple[str, ...]
    key: str
    value: str
    feeds: str = ""


@dataclass(frozen=True)
class Source:
    name: str
    table: str  # the rows searched; their id is the index entry's id
    conversation: str  # the column of ``table`` naming the conversation a hit belongs to
    columns: tuple[tuple[str, str], ...]  # (column of the view, weight letter A-D), in index order
    view: dict[str, str]  # vendor -> SELECT id, <columns...>, <dependents' keys> FROM ...
    watched: tuple[str, ...]  # the columns of ``table`` the view reads
    dependents: tuple[Dependent, ...] = ()
    #: (n, table columns): the first n columns of the view are read from these columns of ``table``
    #: alone. An update of the row that leaves them as they were re-indexes on PostgreSQL only the
    #: columns after them (``_postgres_after``), where that is exact (``separable``): a message's
    #: sender or customer changing does not fold and stem its body again. (0, ()): the whole row.
    head: tuple[int, tuple[str, ...]] = (0, ())

    def table_name(self, vendor: str) -> str:
        return f"search_{self.name}_fts" if vendor == "sqlite" else f"search_{self.name}_document"

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def separable(self, first: int) -> bool:
        """Whether the columns before ``first`` (at least one) share no weight letter with those from
        it on: then the document without the latter's letters (``ts_filter``) is exactly the vector
        of the columns before ``first``, what the partial re-index (``_postgres_after``) keeps."""
        return 0 < first < len(self.columns) and not (
            {w for _, w in self.columns[:first]} & {w for _, w in self.columns[first:]})

    def tail(self, dependent: Dependent) -> int | None:
        """The index of the last column, when each of ``dependent``'s rows names one row of this
        source (by id) and feeds only that column, and no other column has its letter: a change in
        the dependent re-indexes that column alone, exactly."""
        last = len(self.columns) - 1
        if dependent.key != "id" or dependent.feeds != self.columns[last][0] or not self.separable(last):
            return None
        return last


MESSAGES = Source(
    name="message", table="messages_app_message", conversation="conversation_id",
    columns=(("subject", "A"), ("body", "D"), ("sender", "B"), ("customer", "B"), ("attachments", "C")),
    view={
        "sqlite": """SELECT m.id, m.subject, substr(m.text, 1, BODY_CHARS) AS body,
            trim(m.from_name || ' ' || m.from_address) AS sender,
            coalesce((SELECT c.name FROM crm_customer c WHERE c.id = m.customer_id), '') AS customer,
            coalesce((SELECT group_concat(a.filename, ' ') FROM messages_app_attachment a
                      WHERE a.message_id = m.id), '') AS attachments,
            m.customer_id FROM messages_app_message m""".replace("BODY_CHARS", str(BODY_CHARS)),  # nosec B608  # a constant
        "postgresql": """SELECT m.id, m.subject, left(m.text, BODY_CHARS) AS body,
            trim(m.from_name || ' ' || m.from_address) AS sender,
            coalesce((SELECT c.name FROM crm_customer c WHERE c.id = m.customer_id), '') AS customer,
            coalesce((SELECT string_agg(a.filename, ' ' ORDER BY a.part) FROM messages_app_attachment a
                      WHERE a.message_id = m.id), '') AS attachments,
            m.customer_id FROM messages_app_message m""".replace("BODY_CHARS", str(BODY_CHARS)),  # nosec B608  # a constant
    },
    watched=("subject", "text", "from_name", "from_address", "customer_id"),
    head=(2, ("subject", "text")),  # subject (A) and body (D); sender, customer (B), attachments (C) after
    dependents=(
        Dependent("messages_app_attachment", ("filename", "message_id"), key="id", value="message_id",
                  feeds="attachments"),
        Dependent("crm_customer", ("name",), key="customer_id", value="id"),
    ),
)

#: Agents' internal notes on conversations (buzon.workspace's ConversationNote): searched by people
#: who may see the conversation, like its mail; never mailed.
NOTES = Source(
    name="note", table="workspace_conversationnote", conversation="conversation_id",
    columns=(("body", "C"),),
    view={vendor: "SELECT n.id, n.text AS body FROM workspace_conversationnote n"
          for vendor in ("sqlite", "postgresql")},
    watched=("text",),
)

#: Every source searched, in the order their hits are looked up.
SOURCES: tuple[Source, ...] = (MESSAGES, NOTES)


# -- SQLite -------------------------------------------------------------------------------------

def _sqlite_fill(source: Source, where: str) -> str:
    cols = ", ".join(source.names)
    return (f"INSERT OR REPLACE INTO {source.table_name('sqlite')} (rowid, {cols}) "  # nosec B608
            f"SELECT id, {cols} FROM search_{source.name}_source WHERE {where};")


def _changed(columns: tuple[str, ...], sqlite: bool) -> str:
    op = "IS NOT" if sqlite else "IS DISTINCT FROM"
    return " OR ".join(f"OLD.{c} {op} NEW.{c}" for c in columns)


def sqlite_ddl(source: Source) -> list[str]:
    """Every statement may run again (IF NOT EXISTS): ``ensure`` re-creates triggers that a later
    migration dropped (SQLite rebuilds a table to alter a column, and its triggers go with it)."""
    fts, t, n = source.table_name("sqlite"), source.table, source.name
    statements = [
        f"CREATE VIEW IF NOT EXISTS search_{n}_source AS {source.view['sqlite']}",
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({', '.join(source.names)}, "
        "tokenize = 'unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER IF NOT EXISTS search_{n}_ai AFTER INSERT ON {t} "
        f"BEGIN {_sqlite_fill(source, 'id = NEW.id')} END",
        f"CREATE TRIGGER IF NOT EXISTS search_{n}_au AFTER UPDATE OF {', '.join(source.watched)} ON {t} "
        f"WHEN {_changed(source.watched, True)} BEGIN {_sqlite_fill(source, 'id = NEW.id')} END",
        f"CREATE TRIGGER IF NOT EXISTS search_{n}_ad AFTER DELETE ON {t} "  # nosec B608
        f"BEGIN DELETE FROM {fts} WHERE rowid = OLD.id; END",
    ]
    for i, dep in enumerate(source.dependents):
        old = _sqlite_fill(source, f"{dep.key} = OLD.{dep.value}")
        new = _sqlite_fill(source, f"{dep.key} = NEW.{dep.value}")
        statements += [
            f"CREATE TRIGGER IF NOT EXISTS search_{n}_d{i}_ai AFTER INSERT ON {dep.table} BEGIN {new} END",
            f"CREATE TRIGGER IF NOT EXISTS search_{n}_d{i}_au AFTER UPDATE OF {', '.join(dep.columns)} ON {dep.table} "
            f"WHEN {_changed(dep.columns, True)} BEGIN {old} {new} END",
            f"CREATE TRIGGER IF NOT EXISTS search_{n}_d{i}_ad AFTER DELETE ON {dep.table} BEGIN {old} END",
        ]
    return statements


def sqlite_drop(source: Source) -> list[str]:
    n = source.name
    triggers = [f"search_{n}_ai", f"search_{n}_au", f"search_{n}_ad"] + [
        f"search_{n}_d{i}_{op}" for i in range(len(source.dependents)) for op in ("ai", "au", "ad")]
    return [*(f"DROP TRIGGER IF EXISTS {name}" for name in triggers),
            f"DROP TABLE IF EXISTS {source.table_name('sqlite')}", f"DROP VIEW IF EXISTS search_{n}_source"]


# -- PostgreSQL ---------------------------------------------------------------------------------

def postgres_functions(connection: Any) -> list[str]:
    """``search_fold``: what ``buzon.search.words.fold`` does to a word, for a whole text: NFKD, the
    marks it leaves removed, lower case (ICU's, where PostgreSQL has it, so a C-locale database
    folds "Д" too), "ß" as "ss"; and all ASCII punctuation separates words (as in FTS5's unicode61:
    the default parser would otherwise keep "ana@shop.test" or "v1.2" as one token no typed word
    matches). About 0.2 ms for 2 KB of text. ``search_vector``: a column's words in Spanish and in
    English, weighted (what ``_vector`` writes out; kept for queries typed by hand)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')")
        icu = ' COLLATE "und-x-icu"' if cursor.fetchone()[0] else ""
    return [
        "CREATE OR REPLACE FUNCTION search_fold(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
        f"SELECT regexp_replace(replace(lower(regexp_replace(normalize(coalesce($1, ''), NFKD), "
        f"'{combining_marks()}+', '', 'g'){icu}), 'ß', 'ss'), '[!-/:-@[-`{{-~]+', ' ', 'g') $$",
        'CREATE OR REPLACE FUNCTION search_vector(text, "char") RETURNS tsvector LANGUAGE sql IMMUTABLE '  # nosec B608  # constants only
        f"PARALLEL SAFE AS $$ SELECT setweight({postgres_stems('folded')}, $2) FROM search_fold($1) AS folded $$",
    ]


def postgres_stems(folded: str) -> str:
    """The words of the folded text ``folded`` (an SQL expression) stemmed in Spanish and in English,
    in that order: one place for the dictionaries a document and a query's stems use."""
    return f"to_tsvector('spanish'::regconfig, {folded}) || to_tsvector('english'::regconfig, {folded})"


def _vector(columns: tuple[tuple[str, str], ...]) -> str:
    """The document of these (column, weight) of the ``_folded`` subquery ``f``: what ``search_vector``
    gives for each, joined in order. Written out, not through ``search_vector``: a SQL function with
    a FROM clause is not inlined, so its body was planned again in every statement that called it
    (for a single message's insert, indexing cost 1.8 ms that way and 1.3 ms written out)."""
    return " || ".join(f"setweight({postgres_stems(f'f.{name}')}, '{weight}')" for name, weight in columns)


def _folded(columns: tuple[tuple[str, str], ...]) -> str:
    """``LATERAL (SELECT search_fold(s.<column>) AS <column>, …) f``: each column folded once for both
    dictionaries (OFFSET 0 keeps the planner from copying the fold into each of its two uses)."""
    folds = ", ".join(f"search_fold(s.{name}) AS {name}" for name, _ in columns)
    return f"LATERAL (SELECT {folds} OFFSET 0) f"


def postgres_select(source: Source) -> str:
    """``SELECT s.id, <document> FROM <the source's view> s, <its folded columns>``, for a WHERE on
    the view's columns (``id``, a dependent's key)."""
    return (f"SELECT s.id, {_vector(source.columns)} "  # nosec B608  # names from the SOURCES constants
            f"FROM search_{source.name}_source s, {_folded(source.columns)}")


def _postgres_fill(source: Source, where: str) -> str:
    table = source.table_name("postgresql")
    return (f"INSERT INTO {table} (id, document) {postgres_select(source)} WHERE {where} "  # nosec B608
            "ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document;")


#: The characters of a row's columns (their sum) below which its document's word positions all stay
#: below PostgreSQL's last one, 16,383: folding leaves words of letters and digits between blanks, so
#: a column has at most one position per character over its two dictionaries. (Only characters that
#: NFKD turns into several words, such as U+FDFA, break that bound; mail is not written in them.)
TAIL_CHARS = 16_000


def _postgres_after(source: Source, first: int, value: str) -> str:
    """Re-index the columns from ``first`` on of the row ``value`` names, where ``source.separable(first)``.

    The document is the columns' vectors joined in order (``postgres_vector``; each one's positions
    follow the previous ones'), and no column before ``first`` has the weight letter of one from it
    on, so the document without those letters' positions (``ts_filter``) is exactly the vector of
    the columns before ``first``; joining the later columns' new vectors to it gives what a whole
    re-index gives, without reading, folding and stemming the earlier columns again (a message's
    body: most of the cost). A row with no entry yet, or text long enough for positions to reach
    PostgreSQL's last one (where they merge), gets the whole re-index."""
    return (f"{_postgres_partial(source, first, f's.id = {value}')}; "
            f"IF NOT FOUND THEN {_postgres_fill(source, f'id = {value}')} END IF;")


def _postgres_partial(source: Source, first: int, rows: str) -> str:
    """The UPDATE of ``_postgres_after`` for the source rows ``rows`` (a condition on ``s.id``) names,
    where it is exact (an entry there, positions short of the last)."""
    table = source.table_name("postgresql")
    kept = ",".join(sorted({w.lower() for _, w in source.columns[:first]}))
    rebuilt = source.columns[first:]
    chars = " + ".join(f"coalesce(length(s.{column}), 0)" for column in source.names)
    return (f"UPDATE {table} AS d SET document = ts_filter(d.document, '{{{kept}}}') || {_vector(rebuilt)} "  # nosec B608
            f"FROM search_{source.name}_source s, {_folded(rebuilt)} "
            f"WHERE {rows} AND d.id = s.id AND {chars} < {TAIL_CHARS}")


def _postgres_dependent_fill(source: Source, dependent: Dependent, value: str) -> str:
    """Re-index the source rows a dependent row (``value``: ``OLD.`` or ``NEW.`` its column) feeds."""
    tail = source.tail(dependent)
    if tail is None:
        return _postgres_fill(source, f"{dependent.key} = {value}")
    return _postgres_after(source, tail, value)


def _postgres_reindex_function(source: Source) -> list[str]:
    """The function of the source's update trigger: the columns after ``source.head``'s alone when
    the columns it names are as they were (and that is exact), else the whole row."""
    fill = _postgres_fill(source, "id = NEW.id")
    first, reads = source.head
    if reads and source.separable(first):
        same = " AND ".join(f"OLD.{column} IS NOT DISTINCT FROM NEW.{column}" for column in reads)
        fill = f"IF {same} THEN {_postgres_after(source, first, 'NEW.id')} ELSE {fill} END IF;"
    return [f"CREATE OR REPLACE FUNCTION search_{source.name}_reindex() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN {fill} RETURN NULL; END $$"]


def _postgres_reindex_trigger(source: Source) -> str:
    return (f"CREATE TRIGGER search_{source.name}_reindex AFTER UPDATE OF {', '.join(source.watched)} "
            f"ON {source.table} FOR EACH ROW WHEN ({_changed(source.watched, False)}) "
            f"EXECUTE FUNCTION search_{source.name}_reindex()")


def _postgres_dependent_function(source: Source, i: int, dep: Dependent) -> list[str]:
    """A dependent row deleted or changed: the source rows it fed, and those it feeds now."""
    return [
        f"CREATE OR REPLACE FUNCTION search_{source.name}_d{i}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {_postgres_dependent_fill(source, dep, f'OLD.{dep.value}')} END IF; "
        f"IF TG_OP <> 'DELETE' THEN {_postgres_dependent_fill(source, dep, f'NEW.{dep.value}')} END IF; "
        "RETURN NULL; END $$"]


#: What a statement-level trigger calls the rows its statement inserted or deleted (its transition
#: table). ``id = ANY (ARRAY(SELECT ...))`` reads them as an array of unknown length, which the
#: planner answers with the primary key's index whatever the table's size: a join with the
#: transition table, of which it has no statistics, could scan a million messages.
_NEW, _OLD = "search_new_rows", "search_old_rows"


def _ids(column: str, rows: str) -> str:
    return f"ANY (ARRAY(SELECT DISTINCT {column} FROM {rows}))"  # nosec B608  # names from constants


def _postgres_dependent_inserted(source: Source, i: int, dep: Dependent) -> list[str]:
    """Dependent rows inserted, per statement: the source rows they feed, each once. The pipeline
    inserts a chunk's attachments in one statement: their messages' attachment names are indexed in
    one UPDATE, not once per attachment row."""
    table, tail = source.table_name("postgresql"), source.tail(dep)
    ids = _ids(dep.value, _NEW)
    if tail is None:
        fill = _postgres_fill(source, f"{dep.key} = {ids}")
    else:
        # as _postgres_after, for every row at once: the partial re-index where it is exact, the
        # whole one for the others (no entry yet, or positions near PostgreSQL's last)
        fill = (f"WITH partial AS ({_postgres_partial(source, tail, f's.id = {ids}')} RETURNING d.id) "
                f"INSERT INTO {table} (id, document) {postgres_select(source)} "  # nosec B608
                f"WHERE s.id = {ids} AND s.id NOT IN (SELECT id FROM partial) "
                "ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document;")
    return [f"CREATE OR REPLACE FUNCTION search_{source.name}_d{i}_inserted() RETURNS trigger LANGUAGE plpgsql "
            f"AS $$ BEGIN {fill} RETURN NULL; END $$"]


def _postgres_statement_functions(source: Source) -> list[str]:
    """The source's rows inserted or deleted, per statement: a bulk insert of a chunk's messages
    indexes them in one INSERT ... SELECT, not a trigger call, a plan and an executor per row."""
    table, n = source.table_name("postgresql"), source.name
    inserted, deleted = _ids("id", _NEW), _ids("id", _OLD)
    return [
        f"CREATE OR REPLACE FUNCTION search_{n}_inserted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"{_postgres_fill(source, f'id = {inserted}')} RETURN NULL; END $$",
        f"CREATE OR REPLACE FUNCTION search_{n}_deleted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "  # nosec B608
        f"DELETE FROM {table} WHERE id = {deleted}; RETURN NULL; END $$",
    ]


def _postgres_triggers(source: Source) -> list[str]:
    """Every trigger of the source, as defined today (after ``_postgres_drop_triggers``)."""
    t, n = source.table, source.name
    statements = [
        f"CREATE TRIGGER search_{n}_inserted AFTER INSERT ON {t} REFERENCING NEW TABLE AS {_NEW} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION search_{n}_inserted()",
        f"CREATE TRIGGER search_{n}_deleted AFTER DELETE ON {t} REFERENCING OLD TABLE AS {_OLD} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION search_{n}_deleted()",
        _postgres_reindex_trigger(source),
    ]
    for i, dep in enumerate(source.dependents):
        statements += [
            f"CREATE TRIGGER search_{n}_d{i}_inserted AFTER INSERT ON {dep.table} REFERENCING NEW TABLE AS {_NEW} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION search_{n}_d{i}_inserted()",
            f"CREATE TRIGGER search_{n}_d{i} AFTER DELETE ON {dep.table} FOR EACH ROW "
            f"EXECUTE FUNCTION search_{n}_d{i}()",
            f"CREATE TRIGGER search_{n}_d{i}_update AFTER UPDATE OF {', '.join(dep.columns)} ON {dep.table} "
            f"FOR EACH ROW WHEN ({_changed(dep.columns, False)}) EXECUTE FUNCTION search_{n}_d{i}()",
        ]
    return statements


def _postgres_drop_triggers(source: Source) -> list[str]:
    """Every trigger the source has had (``search_<name>_index``: the row-level insert and delete
    of the first installs)."""
    t, n = source.table, source.name
    names = [(f"search_{n}_{what}", t) for what in ("index", "inserted", "deleted", "reindex")]
    for i, dep in enumerate(source.dependents):
        names += [(f"search_{n}_d{i}{what}", dep.table) for what in ("", "_inserted", "_update")]
    return [f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in names]


def _postgres_functions_of(source: Source) -> list[str]:
    return [*_postgres_statement_functions(source), *_postgres_reindex_function(source),
            *(statement for i, dep in enumerate(source.dependents)
              for statement in (*_postgres_dependent_function(source, i, dep),
                                *_postgres_dependent_inserted(source, i, dep)))]


def postgres_ddl(source: Source, connection: Any) -> list[str]:
    table, n = source.table_name("postgresql"), source.name
    return [
        *postgres_functions(connection),
        f"CREATE VIEW search_{n}_source AS {source.view['postgresql']}",
        f"CREATE TABLE {table} (id bigint PRIMARY KEY, document tsvector NOT NULL)",
        f"CREATE INDEX {table}_gin ON {table} USING gin (document)",
        *_postgres_functions_of(source),
        *_postgres_triggers(source),
    ]


def postgres_drop(source: Source) -> list[str]:
    n = source.name
    functions = [f"search_{n}_{what}" for what in ("index", "inserted", "deleted", "reindex")] + [
        f"search_{n}_d{i}{what}" for i in range(len(source.dependents)) for what in ("", "_inserted")]
    return [*_postgres_drop_triggers(source), *(f"DROP FUNCTION IF EXISTS {name}()" for name in functions),
            f"DROP TABLE IF EXISTS {source.table_name('postgresql')}", f"DROP VIEW IF EXISTS search_{n}_source"]


# -- Migrations ----------------------------------------------------------------------------------

def _run(schema_editor: Any, statements: list[str]) -> None:
    with schema_editor.connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def install(schema_editor: Any, source: Source) -> None:
    """Create ``source``'s index, view and triggers (from a migration: ``RunPython``), and index
    the rows already there. Another engine than SQLite or PostgreSQL gets no index (search finds
    nothing there)."""
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        _run(schema_editor, sqlite_ddl(source))
    elif vendor == "postgresql":
        _run(schema_editor, postgres_ddl(source, schema_editor.connection))
    else:
        return
    from buzon.search.index import fill
    fill(source, schema_editor.connection)


def refresh(schema_editor: Any, source: Source) -> None:
    """Re-create an installed source's view (and PostgreSQL's functions and triggers) as defined
    today, for a migration that changes what is indexed, how words are folded or when. Entries
    already written keep what they held until their row changes or ``buzon search_index --rebuild``."""
    vendor, n = schema_editor.connection.vendor, source.name
    if vendor == "sqlite":
        _run(schema_editor, [f"DROP VIEW IF EXISTS search_{n}_source", *sqlite_ddl(source)])
    elif vendor == "postgresql":
        _run(schema_editor, [*postgres_functions(schema_editor.connection),
                             f"CREATE OR REPLACE VIEW search_{n}_source AS {source.view['postgresql']}",
                             *_postgres_drop_triggers(source), f"DROP FUNCTION IF EXISTS search_{n}_index()",
                             *_postgres_functions_of(source), *_postgres_triggers(source)])


def refresh_messages_and_notes(apps: Any, schema_editor: Any) -> None:
    """``refresh`` of both installed sources: a migration's RunPython for a change to how either is
    indexed (search 0005 to 0007)."""
    refresh(schema_editor, MESSAGES)
    refresh(schema_editor, NOTES)


def ensure(connection: Any) -> None:
    """After every ``migrate`` (post_migrate): on SQLite, re-create any trigger of an installed
    source that a migration's table rebuild dropped. (PostgreSQL alters tables in place; a column
    the views read cannot change type there without the migration dropping and re-installing.)"""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for source in SOURCES:
            cursor.execute("SELECT 1 FROM sqlite_master WHERE name = %s", [source.table_name("sqlite")])
            if cursor.fetchone() is None:
                continue  # not installed yet (its migration will)
            for statement in sqlite_ddl(source):
                cursor.execute(statement)


def uninstall(schema_editor: Any, source: Source) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        _run(schema_editor, sqlite_drop(source))
    elif vendor == "postgresql":
        _run(schema_editor, postgres_drop(source))
