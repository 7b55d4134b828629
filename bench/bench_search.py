"""Full-text search of the inbox at volume: p50 / p95 of /conversations/?q=... for every role, each
beside its floor, and what indexing a message costs.

Run: .venv/bin/python bench/bench_search.py [--messages 100000] [--repeat 20] [--json out.json]
SQLite in a temporary data directory by default (or BUZON_DATA_DIR); with DATABASE_URL set, on that
PostgreSQL database instead. An empty database is seeded as bench_workspace.py seeds it (Spanish and
English mail of 150-400 words in N/3.3 conversations, 10 stores, 60 agents and supervisors, indexed
for search; the rate is printed), then analyzed (PostgreSQL: vacuumed too, as autovacuum would); a database that
already holds at least N messages (a previous run's BUZON_DATA_DIR, or a PostgreSQL database seeded
before) is searched as it is, so 1,000,000 messages are seeded once.

Each search (a common word, a rare word, a phrase, an accented word typed without its accent, a
prefix; and the second page of the common word), and the inbox without a search for comparison, is
fetched through Django's test client (every middleware, a signed-in session) as an administrator,
the supervisor of one store and an agent of that store: ``--warmup`` runs, then ``--repeat`` timed
ones; the queries of one run are counted.
The floor is the same first page's conversation ids from one hand-written SQL statement
(bench/search_floor.py), served through the same middleware; the table says whether the ids are
the same, and gives page/floor.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlencode

os.environ.setdefault("BUZON_DATA_DIR", tempfile.mkdtemp(prefix="buzon-bench-search-"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_workspace as site  # noqa: E402  # Django set up, the seeding and the floor view
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import clear_url_caches  # noqa: E402
from search_floor import floor  # noqa: E402

from buzon.crm.models import Agent, Store  # noqa: E402
from buzon.crm.roles import SUPERVISOR_GROUP  # noqa: E402
from buzon.messages.models import Message  # noqa: E402
from buzon.search.schema import MESSAGES, postgres_vector  # noqa: E402

SEARCHES = {"common word": "pedido", "rare word": "zarzamora", "phrase": '"cambio de dirección"',
            "accent-less": "garantia", "prefix": "devol*"}


def index_cost(sample: int = 2000) -> float:
    """Milliseconds to index one message, on average over the newest ``sample``: the engine's own
    work on the text the triggers give it (SQLite: an FTS5 insert; PostgreSQL: the two tsvectors)."""
    cols = ", ".join(MESSAGES.names)
    with connection.cursor() as cursor:
        began = time.perf_counter()
        if connection.vendor == "sqlite":
            cursor.execute(f"CREATE VIRTUAL TABLE temp.cost USING fts5({cols}, "
                           "tokenize = 'unicode61 remove_diacritics 2')")
            cursor.execute(f"INSERT INTO temp.cost ({cols}) SELECT {cols} FROM search_message_source "  # noqa: S608
                           "ORDER BY id DESC LIMIT %s", [sample])
            cursor.execute("DROP TABLE temp.cost")
        else:
            cursor.execute(f"SELECT count(*) FROM (SELECT {postgres_vector(MESSAGES)} AS v "  # noqa: S608
                           "FROM search_message_source ORDER BY id DESC LIMIT %s) s WHERE v IS NOT NULL", [sample])
        return (time.perf_counter() - began) * 1000 / sample


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.ROOT_URLCONF = "bench_workspace_urls"
    clear_url_caches()
    logging.disable(logging.INFO)  # sign-in lines of each client
    call_command("migrate", verbosity=0, interactive=False)
    if site.seed_unless_held(args.messages, random.Random(7)) is not None:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    held = Message.objects.count()
    print(f"indexing one message (the engine's work on its text): {index_cost():.2f} ms", flush=True)
    store = Store.objects.order_by("pk").first()
    assert store is not None
    people = Agent.objects.filter(stores=store).select_related("user").order_by("pk")
    supervisor = people.filter(user__groups__name=SUPERVISOR_GROUP).first()
    agent = people.exclude(user__groups__name=SUPERVISOR_GROUP).first()
    assert supervisor is not None and agent is not None
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_user(
        "bench-admin", is_staff=True, is_superuser=True)
    roles = {"admin": (admin, None), "supervisor": (supervisor.user, supervisor), "agent": (agent.user, agent)}
    rows: list[dict[str, Any]] = []
    for role, (user, me) in roles.items():
        client = Client()
        client.force_login(user)
        searches = list(SEARCHES.items())
        # The list itself first: what the page costs around a search.
        for label, q in [("(no search: the list)", ""), *searches, ("common word, page 2", SEARCHES["common word"])]:
            url = "/conversations/?" + urlencode({"view": "", **({"q": q} if q else {})})
            if label.endswith("page 2"):
                first = client.get(url).content.decode()
                cursor = re.search(r'id="more-results" href="[^"]*cursor=([^"]+)"', first)
                assert cursor is not None, "no second page"
                url += "&cursor=" + cursor.group(1).replace("&amp;", "&")
            got = site.timed(client, url, args.warmup, args.repeat)
            row: dict[str, Any] = {"search": label, "q": q, "role": role, "p50": got["p50"], "p95": got["p95"],
                                   "queries": got["queries"], "results": got["body"].count(b"data-conversation=")}
            if q and not label.endswith("page 2"):
                key = f"s{len(site.FLOORS)}"
                site.FLOORS[key] = floor(q, [store.pk] if me else [], me.pk if me else None)
                fl = site.timed(client, f"/bench-floor/{key}/", args.warmup, args.repeat)
                ids = site.page_ids(got["body"], "html")
                row.update(floor_p95=fl["p95"], ratio=got["p95"] / fl["p95"] if fl["p95"] else None,
                           same_ids=ids == json.loads(fl["body"])["ids"])
            rows.append(row)
            extra = (f" floor p95 {row['floor_p95']:6.1f} ms{'' if row['same_ids'] else ' (ids differ!)'}"
                     if "floor_p95" in row else "")
            print(f"{label:<20} {role:<10} {row['results']:3} results p50 {row['p50']:7.1f} p95 {row['p95']:7.1f} ms "
                  f"{row['queries']:3} q{extra}", flush=True)
    print(f"\nSearch at volume: {held:,} messages, {connection.vendor}; p50/p95 of {args.repeat} runs after "
          f"{args.warmup} warm-up; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| search | role | results | p50 ms | p95 ms | queries | floor p95 ms | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        fl = f"{r['floor_p95']:.1f}" if "floor_p95" in r else "-"
        ratio = f"{r['ratio']:.1f}" if r.get("ratio") else "-"
        mark = "" if r.get("same_ids", True) else " (ids differ)"
        print(f"| {r['search']} | {r['role']} | {r['results']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['queries']} "
              f"| {fl} | {ratio}{mark} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"vendor": connection.vendor, "messages": held, "repeat": args.repeat, "searches": rows},
                      out, indent=1, default=str)


if __name__ == "__main__":
    main()
