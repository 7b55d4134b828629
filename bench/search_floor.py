"""The floor of a search page: the same first page's conversation ids from one hand-written SQL
statement, for bench_search.py and bench_workspace.py.

It does what buzon.search.ranking does for a first page, written out by hand for one role: the
newest 500 matching messages whose conversation the role may see (the store and assigned-agent
columns of the conversation row; on SQLite among the newest 5,000 matches; on PostgreSQL from the
GIN index when the words have at most 5,000 matches, else walking newest first), each scored (SQLite:
1, +10 all words in the subject, +4 in the sender or customer, +2 in an attachment name, none for a
prefix; PostgreSQL: ts_rank), the best per conversation, then the best 50. Internal notes are left
out (the benches write none).
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from buzon.search.words import fts5_match, parse, tsquery

POOL, SCAN, PAGE = 500, 5000, 50


def floor(q: str, stores: list[int], agent: int | None) -> tuple[str, list[Any]]:
    """(sql, params) for the first page of ``q`` as a user of ``stores`` who is ``agent`` (None:
    an administrator, who sees every conversation with mail)."""
    terms = parse(q)
    visible, params = "c.last_message_at IS NOT NULL", []
    if agent is not None:
        marks = ", ".join("%s" for _ in stores) or "NULL"
        visible += f" AND (c.store_id IN ({marks}) OR c.agent_id = %s)"
        params = [*stores, agent]
    if connection.vendor == "sqlite":
        match = fts5_match(terms)
        weights = () if "*" in match else (10.0, 4.0, 2.0)  # a prefix: its newest first, as Buzón
        fields = " UNION ALL ".join(
            f"SELECT rowid AS id, {weight} AS w FROM search_message_fts WHERE search_message_fts MATCH %s "
            "AND rowid >= (SELECT min(id) FROM newest) AND rowid <= (SELECT max(id) FROM newest)"
            for weight in weights) or "SELECT NULL AS id, NULL AS w WHERE 0"
        columns = ("subject", "sender customer", "attachments") if weights else ()
        return (
            "WITH newest AS MATERIALIZED (SELECT f.rowid AS id, m.conversation_id AS cid "
            "FROM search_message_fts f JOIN messages_app_message m ON m.id = f.rowid "
            "JOIN messages_app_conversation c ON c.id = m.conversation_id "
            f"WHERE search_message_fts MATCH %s AND {visible} AND f.rowid >= (SELECT min(id) FROM ("
            f"SELECT rowid AS id FROM search_message_fts WHERE search_message_fts MATCH %s ORDER BY rowid DESC "
            f"LIMIT {SCAN})) ORDER BY f.rowid DESC LIMIT {POOL}), "
            f"fields AS MATERIALIZED ({fields}), "
            "scored AS (SELECT n.id, n.cid, 1.0 + coalesce(sum(f.w), 0) AS score FROM newest n "
            "LEFT JOIN fields f ON f.id = n.id GROUP BY n.id, n.cid) "
            f"SELECT cid FROM scored GROUP BY cid ORDER BY max(score) DESC, cid DESC LIMIT {PAGE}",
            [match, *params, match, *(f"{{{cols}}} : ({match})" for cols in columns)])
    text = tsquery(terms)
    query = "(to_tsquery('spanish', %s) || to_tsquery('english', %s))"
    # A rare word's few matches come from the GIN index (at most SCAN + 1 asked, in any order), each
    # looked up newest first; a common word's newest by walking the primary key backwards. Both in one
    # statement: the branch not taken is cut by a one-time filter on the count of the first.
    rows = ("SELECT d.id, m.conversation_id AS cid, d.document FROM search_message_document d "
            "JOIN messages_app_message m ON m.id = d.id JOIN messages_app_conversation c ON c.id = m.conversation_id")
    return (
        f"WITH few AS MATERIALIZED (SELECT id FROM search_message_document WHERE document @@ {query} "
        f"LIMIT {SCAN + 1}), "
        f"newest AS MATERIALIZED (SELECT id, cid, ts_rank(document, {query})::float8 AS score FROM ("
        f"(SELECT r.* FROM (SELECT id FROM few ORDER BY id DESC) f CROSS JOIN LATERAL ({rows} "
        f"WHERE d.id = f.id AND {visible}) r WHERE (SELECT count(*) FROM few) <= {SCAN} LIMIT {POOL}) "
        f"UNION ALL ({rows} WHERE (SELECT count(*) FROM few) > {SCAN} AND d.document @@ {query} AND {visible} "
        f"ORDER BY d.id DESC LIMIT {POOL})) n) "
        f"SELECT cid FROM newest GROUP BY cid ORDER BY max(score) DESC, cid DESC LIMIT {PAGE}",
        [text, text, text, text, *params, text, text, *params])
