"""The agents' workspace at volume: p50 / p95 of what a user waits for, with a floor for each list.

Run: .venv/bin/python bench/bench_workspace.py [--messages 1000000] [--repeat 20] [--json out.json]
SQLite in a temporary data directory by default (migrated here); with DATABASE_URL set, on that
PostgreSQL database instead (give an empty scratch database: the bench fills it).

Seeds N messages (Spanish and English text of a few hundred words; Message.raw is null: lists and
search read the text) in N/3.3 conversations kept consistent with them (store, account, customer,
agent, status, last activity, snippet, count), N/10 customers, 10 stores, 1,000 email accounts and
60 agents and supervisors, with bulk inserts in transactions, indexed for search (on SQLite by the
triggers as each row is written; on PostgreSQL by a connection per core once the rows are in, the
triggers off meanwhile; the rate printed includes it). Then the planner's statistics: on SQLite
those Buzón's housekeeping job gathers (buzon.core.housekeeping, hourly and after ``migrate``), on
PostgreSQL a VACUUM ANALYZE, as autovacuum would soon run. A database that already holds at least
``--messages`` (a previous run's BUZON_DATA_DIR or DATABASE_URL) is timed as it is: 1,000,000 messages
are seeded once.

Each page is fetched through Django's test client (every middleware, a signed-in session) as an
administrator, the supervisor of one store and an agent of that store: ``--warmup`` runs, then
``--repeat`` timed ones; the queries of one run are counted. Beside each list, its floor: the same
first page's ids from one hand-written indexed query, served through the same middleware by a view
registered by this bench only; the table gives page/floor. Deep pages start from the cursor of a row
about 50,000 deep (page 1,000), or half-way down a smaller list.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import logging
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

os.environ.setdefault("BUZON_DATA_DIR", tempfile.mkdtemp(prefix="buzon-bench-workspace-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "buzon.settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.decorators import login_required  # noqa: E402
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX, make_password  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, reset_queries, transaction  # noqa: E402
from django.db.models import Count, Q  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import clear_url_caches, include, path  # noqa: E402
from django.utils import timezone  # noqa: E402

from buzon.core.housekeeping import optimize_database  # noqa: E402
from buzon.crm.models import Agent, Customer, CustomerEmail, JobApplicant, Notification, Store, Ticket  # noqa: E402
from buzon.crm.roles import SUPERVISOR_GROUP  # noqa: E402
from buzon.mailboxes.models import AuditEntry, EmailAccount  # noqa: E402
from buzon.messages.conversations import SNIPPET_LENGTH, Conversation  # noqa: E402
from buzon.messages.models import Message  # noqa: E402
from buzon.search import index as search_index  # noqa: E402
from buzon.search.schema import SOURCES  # noqa: E402
from buzon.workspace.models import ConversationRead  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import search_floor  # noqa: E402

STORES, ACCOUNTS, SUPERVISORS, AGENTS_PER_STORE = 10, 1000, 1, 5  # 10 x (1 + 5) = 60 people
DEEP = 50_000  # page 1,000 of 50 rows

# -- Text ------------------------------------------------------------------------------------------

SUBJECTS_ES = ["Pedido {n} no ha llegado", "Problema con la factura {n}", "Cambio de dirección de envío",
               "Devolución del pedido {n}", "Consulta sobre la garantía", "¿Cuándo llega mi paquete?",
               "Talla equivocada en el pedido {n}", "Reparación del teléfono móvil", "Pago con tarjeta rechazado",
               "Información sobre el producto", "Reclamación urgente", "Solicitud de presupuesto",
               "Mi pedido llegó dañado", "Cancelar suscripción", "Duda sobre el envío a Canarias"]
SUBJECTS_EN = ["Order {n} has not arrived", "Problem with invoice {n}", "Change of delivery address",
               "Return for order {n}", "Warranty question", "Where is my parcel?", "Wrong size in order {n}",
               "Refund not received", "Card payment declined", "Question about the product",
               "Damaged item in order {n}", "Cancel my subscription"]
SENTENCES_ES = [
    "Hola, buenos días.", "Les escribo porque todavía no he recibido el pedido que hice la semana pasada.",
    "El número de seguimiento no funciona en la página de la empresa de transporte.",
    "Necesito hacer un cambio de dirección porque me mudo el mes que viene.",
    "La factura que me enviaron tiene un error en el número de identificación fiscal.",
    "¿Podrían decirme cuánto tardará la devolución del importe en mi tarjeta?",
    "El producto llegó con la caja rota y una de las piezas está dañada.",
    "Quería saber si la garantía cubre la reparación del técnico a domicilio.",
    "Mi hijo se equivocó de talla y necesitamos cambiarla por una más grande.",
    "Adjunto una fotografía del paquete tal y como llegó a casa.",
    "He intentado llamar por teléfono varias veces pero nadie contesta.",
    "Les agradecería una respuesta lo antes posible, es bastante urgente.",
    "También me gustaría saber si tienen disponible el mismo modelo en color azul.",
    "La información de la página web no coincide con lo que pone en el correo de confirmación.",
    "Según el correo, la entrega estaba prevista para el martes por la mañana.",
    "No entiendo por qué me han cobrado dos veces el mismo pedido.",
    "El repartidor dejó el aviso pero yo estaba en casa toda la tarde.",
    "¿Es posible recogerlo en la tienda en lugar de recibirlo en casa?",
    "Muchas gracias por su atención y un saludo cordial.", "Quedo a la espera de sus noticias.",
    "La canción del anuncio me encantó, por cierto.", "El café que compré el año pasado era mejor.",
    "Mi señora madre también es clienta suya desde hace años.",
    "Por favor, confirmen que han recibido este mensaje.",
]
SENTENCES_EN = [
    "Hello, I hope you are well.", "I am writing because my order from last week has still not arrived.",
    "The tracking number does not work on the courier's website.",
    "I need to change the delivery address because I am moving next month.",
    "The invoice you sent me has the wrong company name on it.",
    "Could you tell me how long the refund to my card will take?",
    "The product arrived with a broken box and one of the parts is damaged.",
    "I would like to know whether the warranty covers a repair at home.",
    "My son ordered the wrong size and we need to exchange it for a larger one.",
    "I attach a photo of the parcel as it arrived.", "I tried calling several times but nobody answered.",
    "I would appreciate an answer as soon as possible, it is quite urgent.",
    "I would also like to know whether you have the same model in blue.",
    "The information on the website does not match the confirmation email.",
    "I do not understand why I was charged twice for the same order.",
    "Can I pick it up in the shop instead of having it delivered?",
    "Thank you for your help, kind regards.", "Looking forward to hearing from you.",
]
REPLIES_ES = ["Gracias por escribirnos.", "Sentimos mucho las molestias.", "Hemos revisado su pedido.",
              "Le enviamos un nuevo paquete hoy mismo.", "La devolución se hará en un plazo de cinco días.",
              "Hemos actualizado la dirección de envío.", "Un saludo, el equipo de atención al cliente."]
REPLIES_EN = ["Thank you for writing to us.", "We are sorry for the trouble.", "We have checked your order.",
              "We are sending a new parcel today.", "The refund will take up to five days.",
              "We have updated the delivery address.", "Kind regards, the customer service team."]
FIRST = ["Lucía", "José", "María", "Ana", "Jorge", "Carmen", "John", "Emily", "Peter", "Sofía", "Íñigo", "Nuria",
         "Álvaro", "Begoña", "Raúl", "Sarah", "David", "Marta", "Pablo", "Inés"]
LAST = ["García", "Martínez", "López", "Pérez", "Sánchez", "Gómez", "Smith", "Brown", "Jones", "Díaz", "Ruiz",
        "Peña", "Muñoz", "Fernández", "Castaño", "Wilson", "Moreno", "Ibáñez"]
SEARCHES = {"search common word": "pedido", "search rare word": "zarzamora",
            "search phrase": '"cambio de dirección"', "search accent-less": "garantia"}


def body(rng: random.Random, spanish: bool, words: int, order: int, reply: bool) -> str:
    pool = (REPLIES_ES if spanish else REPLIES_EN) if reply else (SENTENCES_ES if spanish else SENTENCES_EN)
    out: list[str] = []
    count = 0
    while count < words:
        sentence = rng.choice(pool)
        if rng.random() < 0.05:
            sentence += f" Referencia {order}-{rng.randrange(1000)}." if spanish else f" Reference {order}."
        out.append(sentence)
        count += sentence.count(" ") + 1
    if rng.random() < 0.0002:
        out.insert(rng.randrange(len(out)), "La mermelada de zarzamora estaba caducada.")
    return " ".join(out)


# -- Seeding ---------------------------------------------------------------------------------------

def _no_auto_now(*fields: Any) -> None:
    """Seeded rows carry their own times (a year of mail), not the instant of the insert."""
    for model, name in fields:
        field = model._meta.get_field(name)
        field.auto_now = field.auto_now_add = False


class Seeded:
    def __init__(self) -> None:
        self.stores: list[Store] = []
        self.accounts: dict[int, list[int]] = {}
        self.agents: dict[int, list[Agent]] = {}
        self.supervisors: dict[int, Agent] = {}
        self.customers: dict[int, list[tuple[int, int | None]]] = {}
        self.messages = self.conversations = 0
        self.seconds = 0.0


def seed_unless_held(total: int, rng: random.Random) -> Seeded | None:
    """Seed an empty database with ``total`` messages; None when it holds that many already (timed as
    it is: 1,000,000 messages are seeded once)."""
    held = Message.objects.count()
    if held >= total:
        print(f"database: {connection.vendor}; timing the {held:,} messages it holds", flush=True)
        return None
    if held:
        raise SystemExit(f"The database holds {held:,} messages, fewer than --messages: give an empty one.")
    print(f"database: {connection.vendor}; seeding {total:,} messages...", flush=True)
    data = seed(total, rng)
    print(f"seeded {data.messages:,} messages in {data.conversations:,} conversations in {data.seconds:,.0f} s "
          f"({data.messages / data.seconds:,.0f} messages/s, indexed for search)", flush=True)
    return data


def seeded() -> Seeded:
    """What seed() wrote, read back from a database it filled before (a million messages are seeded
    once, then timed as often as wanted)."""
    out = Seeded()
    out.stores = list(Store.objects.order_by("pk"))
    for pk, store_id in EmailAccount.objects.order_by("pk").values_list("pk", "store_id"):
        out.accounts.setdefault(store_id, []).append(pk)
    for store in out.stores:
        people = list(Agent.objects.filter(stores=store).select_related("user").annotate(
            supervises=Count("user__groups", filter=Q(user__groups__name=SUPERVISOR_GROUP))).order_by("pk"))
        out.supervisors[store.pk] = next(a for a in people if a.supervises)  # type: ignore[attr-defined]
        out.agents[store.pk] = [a for a in people if not a.supervises]  # type: ignore[attr-defined]
    for pk, store_id, agent_id in Customer.objects.order_by("pk").values_list("pk", "store_id", "agent_id"):
        out.customers.setdefault(store_id, []).append((pk, agent_id))
    out.messages, out.conversations = Message.objects.count(), Conversation.objects.count()
    return out


@contextmanager
def _search_indexed_after() -> Iterator[None]:
    """On PostgreSQL, the search triggers off while seeding and the index filled afterwards by a
    connection per core: their to_tsvector (two dictionaries) is most of what a seeded message costs,
    and one connection used one core (1,000,000 messages took about an hour). SQLite's FTS5 triggers
    stay on (0.1-0.3 ms a message)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
                       "WHERE NOT tgisinternal AND tgname LIKE 'search\\_%'")
        triggers = cursor.fetchall()
        for table, name in triggers:
            cursor.execute(f'ALTER TABLE {table} DISABLE TRIGGER "{name}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for table, name in triggers:
                cursor.execute(f'ALTER TABLE {table} ENABLE TRIGGER "{name}"')
    began = time.monotonic()
    workers = max(2, os.cpu_count() or 2)
    for source in SOURCES:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {source.table}")  # noqa: S608
            top = cursor.fetchone()[0]
        step = max(1, -(-top // (workers * 8)))

        def part(after: int, source: Any = source, step: int = step) -> int:
            try:
                return search_index.fill(source, after=after, until=after + step)
            finally:
                connections.close_all()

        with ThreadPoolExecutor(workers) as pool:
            done = sum(pool.map(part, range(0, top, step)))
        print(f"  search index of {source.name}: {done:,} rows", flush=True)
    print(f"  search index filled by {workers} connections in {time.monotonic() - began:,.0f} s", flush=True)


def seed(total: int, rng: random.Random) -> Seeded:
    began = time.monotonic()
    with _search_indexed_after():
        out = _seed(total, rng)
    out.seconds = time.monotonic() - began
    return out


def _seed(total: int, rng: random.Random) -> Seeded:
    _no_auto_now((Message, "created_at"), (Message, "updated_at"), (Conversation, "created_at"),
                 (Notification, "created_at"), (Ticket, "created_at"), (Ticket, "updated_at"),
                 (Customer, "created_at"))
    out = Seeded()
    now = timezone.now()
    span = dt.timedelta(days=730)
    start = now - span
    supervisors, _ = Group.objects.get_or_create(name=SUPERVISOR_GROUP)
    with transaction.atomic():
        out.stores = [Store.objects.create(name=f"Tienda {i}", email=f"hola@tienda{i}.example") for i in range(STORES)]
        accounts = EmailAccount.objects.bulk_create([
            EmailAccount(email_address=f"buzon{i}@tienda{i % STORES}.example", display_name=f"Buzón {i}",
                         store=out.stores[i % STORES]) for i in range(ACCOUNTS)])
        for account in accounts:
            out.accounts.setdefault(account.store_id, []).append(account.pk)
        for store in out.stores:
            people = []
            for j in range(SUPERVISORS + AGENTS_PER_STORE):
                user = User.objects.create_user(f"s{store.pk}-p{j}", first_name=rng.choice(FIRST),
                                                last_name=rng.choice(LAST))
                if j < SUPERVISORS:
                    user.groups.add(supervisors)
                agent = Agent.objects.create(user=user)
                agent.stores.add(store)
                people.append(agent)
            out.supervisors[store.pk] = people[0]
            out.agents[store.pk] = people[SUPERVISORS:]
        n_customers = max(1000, total // 10)
        for low in range(0, n_customers, 5000):
            batch = []
            for i in range(low, min(n_customers, low + 5000)):
                store = out.stores[i % STORES]
                agent = rng.choice(out.agents[store.pk]) if rng.random() < 0.5 else None
                batch.append(Customer(name=f"{rng.choice(FIRST)} {rng.choice(LAST)}", store=store, agent=agent,
                                      created_at=start + span * (i / n_customers)))
            Customer.objects.bulk_create(batch)
            CustomerEmail.objects.bulk_create([
                CustomerEmail(customer=c, store_id=c.store_id, address=f"cliente{c.pk}@correo{c.pk % 97}.example")
                for c in batch])
            for c in batch:
                out.customers.setdefault(c.store_id, []).append((c.pk, c.agent_id))
    ticket_type = ContentType.objects.get_for_model(Ticket)
    agent_users = {a.pk: a.user_id for agents in out.agents.values() for a in agents}
    n_conversations = max(1, round(total / 3.3))
    started = time.monotonic()
    written, made = 0, 0
    while written < total:
        with transaction.atomic():
            plans = []
            for _ in range(min(3000, max(1, n_conversations - made))):
                if written >= total:
                    break
                store = out.stores[rng.randrange(STORES)]
                customer_id, customer_agent = rng.choice(out.customers[store.pk])
                agent_id = customer_agent or (rng.choice(out.agents[store.pk]).pk if rng.random() < 0.6 else None)
                mean = (total - written) / max(1, n_conversations - made)  # 3.3 on average, ending exact
                count = min(total - written, 1 + int(rng.expovariate(1 / max(0.01, mean - 0.5))))
                written += count
                began = start + span * (made / n_conversations) + dt.timedelta(minutes=rng.randrange(600))
                made += 1
                times, at = [], began
                for _ in range(count):
                    times.append(min(at, now - dt.timedelta(seconds=rng.randrange(1, 3600))))
                    at += dt.timedelta(minutes=rng.expovariate(1 / 360))
                plans.append((store, customer_id, agent_id, rng.random() < 0.7, times))
            tickets = Ticket.objects.bulk_create([
                Ticket(subject="Ticket", customer_id=p[1], agent_id=p[2], store=p[0], status="open",
                       created_at=p[4][0], updated_at=p[4][-1]) for p in plans if rng.random() < 0.02])
            ticket_of = {t.customer_id: t.pk for t in tickets}
            conversations, messages, reads = [], [], []
            for store, customer_id, agent_id, spanish, times in plans:
                order = rng.randrange(10_000_000, 99_999_999)
                subject = rng.choice(SUBJECTS_ES if spanish else SUBJECTS_EN).format(n=order)
                last_in = max((t for i, t in enumerate(times) if i % 2 == 0), default=None)
                texts = [body(rng, spanish, rng.randint(150, 400) if i % 2 == 0 else rng.randint(40, 120), order,
                              i % 2 == 1) for i in range(len(times))]
                last_out = len(times) % 2 == 0
                status = ("closed" if times[-1] < now - dt.timedelta(days=30) and rng.random() < 0.9
                          else "pending" if last_out else "open")
                record = ticket_of.pop(customer_id, None)
                conversations.append(Conversation(
                    store=store, account_id=rng.choice(out.accounts[store.pk]), subject=subject,
                    customer_id=customer_id, agent_id=agent_id, status=status, last_message_at=times[-1],
                    last_incoming_at=last_in, snippet=texts[-1][:SNIPPET_LENGTH], message_count=len(times),
                    created_at=times[0], updated_at=times[-1], record_type=ticket_type if record else None,
                    record_id=record))
                messages.append((texts, times, subject, customer_id, agent_id, store))
            Conversation.objects.bulk_create(conversations)
            rows = []
            for conversation, (texts, times, subject, customer_id, agent_id, store) in zip(
                    conversations, messages, strict=True):
                account = conversation.account_id
                for i, (text, at) in enumerate(zip(texts, times, strict=True)):
                    incoming = i % 2 == 0
                    rows.append(Message(
                        direction="in" if incoming else "out", account_id=account, store=store,
                        conversation=conversation, customer_id=customer_id, agent_id=agent_id,
                        status="processed" if incoming else "sent", subject=("Re: " if i else "") + subject,
                        from_address=f"cliente{customer_id}@correo{customer_id % 97}.example" if incoming
                        else f"buzon{account}@tienda.example", from_name="",
                        to=[], date=at, text=text, created_at=at, updated_at=at,
                        message_id=f"<{conversation.pk}.{i}@bench.example>"))
                if agent_id and rng.random() < 0.8:
                    reads.append(ConversationRead(user_id=agent_users[agent_id], conversation=conversation,
                                                  last_read_at=times[-1]))
            Message.objects.bulk_create(rows, batch_size=2000)
            ConversationRead.objects.bulk_create(reads)
        out.messages, out.conversations = written, made
        if made % 30_000 < 3000:
            rate = written / (time.monotonic() - started)
            print(f"  {written:,} messages, {made:,} conversations ({rate:,.0f} messages/s)", flush=True)
    return out


def other_lists(total: int, stores: list[Store], rng: random.Random) -> None:
    """What the other lists hold at this volume, unless there: a job applicant and an audit entry
    (settings changed over the years) per 100 messages, applicants spread over the stores."""
    now, n = timezone.now(), total // 100
    if not JobApplicant.objects.exists():
        applicants = JobApplicant.objects.bulk_create([
            JobApplicant(name=f"Candidata {i}", email=f"candidata{i}@correo.example", subject="Dependienta",
                         store=stores[i % len(stores)]) for i in range(n)], batch_size=2000)
        for i, row in enumerate(applicants):  # auto_now_add wrote "now": spread them over the years
            row.created_at = now - dt.timedelta(minutes=(n - i) * 60 + rng.randrange(30))
        JobApplicant.objects.bulk_update(applicants, ["created_at"], batch_size=1000)
    if not AuditEntry.objects.exists():
        entries = AuditEntry.objects.bulk_create([
            AuditEntry(actor_name="bench-admin", action="changed", target_type=rng.choice(["account", "store", "user"]),
                       target_id=rng.randrange(1, 1000), target_label=f"Ajuste {i}",
                       changes=[{"field": "name", "old": "a", "new": "b"}]) for i in range(n)], batch_size=2000)
        for i, entry in enumerate(entries):
            entry.at = now - dt.timedelta(minutes=(n - i) * 60 + rng.randrange(30))
        AuditEntry.objects.bulk_update(entries, ["at"], batch_size=1000)


def notify(users: list[User], per_user: int, rng: random.Random) -> None:
    now = timezone.now()
    for user in users:
        Notification.objects.bulk_create([
            Notification(user=user, kind="new_email", key=f"bench-{i}", text=f"Correo nuevo de cliente {i}",
                         url="/conversations/", created_at=now - dt.timedelta(minutes=i * 7 + rng.randrange(5)),
                         read_at=now if i > 20 else None) for i in range(per_user)], batch_size=2000)


# -- Floors: one hand-written indexed query per list, served through the same middleware ----------

FLOORS: dict[str, tuple[str, list[Any]]] = {}


@login_required
def floor_view(request: HttpRequest, key: str) -> JsonResponse:
    sql, params = FLOORS[key]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return JsonResponse({"ids": [row[0] for row in cursor.fetchall()]})


bench_urls = types.ModuleType("bench_workspace_urls")
bench_urls.urlpatterns = [path("bench-floor/<str:key>/", floor_view), path("", include("buzon.urls"))]  # type: ignore[attr-defined]
sys.modules["bench_workspace_urls"] = bench_urls


def ts(value: Any) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def newest(table: str, field: str, where: str, params: list[Any], limit: int, before: Any = None) -> tuple[str, list]:
    """The ids of one index range: ``where`` (its own columns), newest ``field`` first, from a cursor."""
    cond = [f"{field} IS NOT NULL"] + ([where] if where else [])
    params = list(params)
    if before is not None:
        cond.append(f"({field} < %s OR ({field} = %s AND id < %s))")
        params += [ts(before[0]), ts(before[0]), before[1]]
    return (f"SELECT id, {field} FROM {table} WHERE {' AND '.join(cond)} ORDER BY {field} DESC, id DESC "
            f"LIMIT {limit}", params)


def union_newest(table: str, field: str, branches: list[tuple[str, list[Any]]], limit: int,
                 before: Any = None) -> tuple[str, list[Any]]:
    """Each branch (a visibility path: the store, the assigned agent) is its own index range; the
    page is the newest ``limit`` of their union."""
    parts, params = [], []
    for i, (where, p) in enumerate(branches):
        sql, bp = newest(table, field, where, p, limit, before)
        parts.append(f"SELECT * FROM ({sql}) b{i}")
        params += bp
    return (f"SELECT id FROM ({' UNION '.join(parts)}) u ORDER BY {field} DESC, id DESC LIMIT {limit}", params)


# -- Timing ----------------------------------------------------------------------------------------

def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def timed(client: Client, url: str, warmup: int, repeat: int) -> dict[str, Any]:
    for _ in range(warmup - 1):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    queries = list(captured.captured_queries)  # now: the next request's start empties the log
    slowest = max(queries, key=lambda q: float(q.get("time") or 0), default={"sql": ""})
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return {"p50": statistics.median(times), "p95": percentile(times, 0.95), "queries": len(queries),
            "body": response.content, "slowest_sql": slowest["sql"],
            "slowest_ms": float(slowest.get("time") or 0) * 1000}


def page_ids(content: bytes, kind: str) -> list[int] | None:
    if kind == "html":
        return [int(x) for x in re.findall(rb'data-conversation="(\d+)"', content)]
    if kind == "json":
        return [row["id"] for row in json.loads(content)["results"]]
    return None


def drf_cursor(position: Any) -> str:
    return base64.b64encode(urlencode({"p": str(position)}).encode()).decode()


def explain(sql: str) -> str:
    if not sql or not sql.lstrip(" (").upper().startswith(("SELECT", "WITH")):
        return ""
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    try:
        with connection.cursor() as cursor:
            cursor.execute(prefix + sql)
            rows = cursor.fetchall()
    except Exception as error:  # noqa: BLE001  # the logged SQL is not always executable as written
        return f"(could not explain: {error})"
    return "\n".join(" ".join(str(c) for c in (row[-1:] if connection.vendor == "sqlite" else row)) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--only", default="", help="time only the pages whose label matches this regular expression")
    parser.add_argument("--no-analyze", action="store_true", help="time the pages without planner statistics first")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.ROOT_URLCONF = "bench_workspace_urls"
    clear_url_caches()
    logging.disable(logging.INFO)  # sign-in lines of each client
    call_command("migrate", verbosity=0, interactive=False)
    rng = random.Random(7)
    fresh = seed_unless_held(args.messages, rng)
    held = fresh is None
    data = fresh or seeded()
    store = data.stores[0]
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_user(
        "bench-admin", is_staff=True, is_superuser=True)
    supervisor, agent = data.supervisors[store.pk], data.agents[store.pk][0]
    # People sign in with a password of their own: one without it is an invitation not yet taken,
    # which Buzón checks on every request (buzon.core.invitations).
    User.objects.filter(password__startswith=UNUSABLE_PASSWORD_PREFIX).update(password=make_password("x" * 16))
    if not Notification.objects.filter(user=agent.user).exists():
        notify([admin, supervisor.user, agent.user], min(5000, max(200, args.messages // 200)), rng)
    other_lists(args.messages, data.stores, rng)
    if held:
        pass  # statistics gathered when it was seeded (and by autovacuum or the housekeeping job since)
    elif not args.no_analyze:
        began = time.monotonic()
        if connection.vendor == "sqlite":
            optimize_database()  # what Buzón's own housekeeping job gathers (sampled statistics)
        else:
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")  # autovacuum's work (statistics, visibility map), done now
        print(f"statistics: {time.monotonic() - began:.1f} s", flush=True)

    conv, msg = Conversation._meta.db_table, Message._meta.db_table
    cust, tick, note = Customer._meta.db_table, Ticket._meta.db_table, Notification._meta.db_table
    acct, appl, audit = EmailAccount._meta.db_table, JobApplicant._meta.db_table, AuditEntry._meta.db_table
    some_account = data.accounts[store.pk][0]
    busy_customer = (Conversation.objects.filter(store=store).values("customer_id")
                     .annotate(n=Count("id")).order_by("-n").first() or {})["customer_id"]
    roles = {"admin": (admin, None), "supervisor": (supervisor.user, supervisor), "agent": (agent.user, agent)}
    results: list[dict[str, Any]] = []

    def run(label: str, role: str, url: str, floor: tuple[str, list[Any]] | None, kind: str = "") -> None:
        if args.only and not re.search(args.only, label):
            return
        user = roles[role][0]
        client = Client()
        client.force_login(User.objects.get(pk=user.pk))  # as stored (its password, above)
        got = timed(client, url, args.warmup, args.repeat)
        row = {"page": label, "role": role, "url": url, "p50": got["p50"], "p95": got["p95"],
               "queries": got["queries"], "slowest_sql": got["slowest_sql"], "slowest_ms": got["slowest_ms"]}
        if floor is not None:
            key = f"f{len(FLOORS)}"
            FLOORS[key] = floor
            fl = timed(client, f"/bench-floor/{key}/", args.warmup, args.repeat)
            row["floor_p95"] = fl["p95"]
            row["ratio"] = got["p95"] / fl["p95"] if fl["p95"] else None
            ids = page_ids(got["body"], kind) if kind else None
            floor_ids = json.loads(fl["body"])["ids"]
            if ids is not None:
                row["same_ids"] = ids == floor_ids[:len(ids)] and (len(ids) > 0 or not floor_ids)
        results.append(row)
        extra = f" floor p95 {row['floor_p95']:.1f} ms" if floor else ""
        same = "" if row.get("same_ids", True) else " (floor ids differ!)"
        print(f"{label:<34} {role:<10} p50 {row['p50']:7.1f} p95 {row['p95']:7.1f} ms {row['queries']:3} q"
              f"{extra}{same}", flush=True)

    for role, (user, me) in roles.items():
        stores = [store.pk] if me is not None else []

        def branches(where: str = "", params: list[Any] | None = None, *, me: Agent | None = me,
                     stores: list[int] = stores) -> list[tuple[str, list[Any]]]:
            params = params or []
            if me is None:
                return [(where, params)]
            both = (lambda w: f"{w} AND {where}") if where else (lambda w: w)
            return [(both(f"store_id IN ({', '.join('%s' for _ in stores)})"), [*stores, *params]),
                    (both("agent_id = %s"), [me.pk, *params])]

        def conv_floor(where: str = "", params: list[Any] | None = None, before: Any = None,
                       limit: int = 50) -> tuple[str, list[Any]]:
            return union_newest(conv, "last_message_at", branches(where, params), limit, before)

        visible = Conversation.objects.filter(last_message_at__isnull=False)
        if me is not None:
            visible = visible.filter(Q(store_id__in=stores) | Q(agent_id=me.pk))
        depth = min(DEEP, max(0, visible.count() // 2))
        deep = visible.order_by("-last_message_at", "-id").values_list("last_message_at", "id")[depth]
        cursor = f"{deep[0].isoformat()}~{deep[1]}"
        run("/conversations/", role, "/conversations/?view=", conv_floor(), "html")
        run(f"/conversations/ deep ({depth:,})", role, "/conversations/?" + urlencode({"view": "", "before": cursor}),
            conv_floor(before=deep), "html")
        filters: list[tuple[str, str, tuple[str, list[Any]] | None]] = [
            ("view=mine", "view=mine", union_newest(conv, "last_message_at", [("agent_id = %s", [me.pk])], 50)
             if me else None),
            ("view=unassigned", "view=unassigned", conv_floor("agent_id IS NULL")),
            ("view=stores", "view=stores", conv_floor(f"store_id IN ({', '.join('%s' for _ in stores)})", stores)
             if stores else conv_floor()),
            ("status=pending", "status=pending", conv_floor("status = %s", ["pending"])),
            ("store=", f"store={store.pk}", conv_floor("store_id = %s", [store.pk])),
            ("account=", f"account={some_account}", conv_floor("account_id = %s", [some_account])),
            ("agent=", f"agent={agent.pk}", conv_floor("agent_id = %s", [agent.pk])),
            ("customer=", f"customer={busy_customer}", conv_floor("customer_id = %s", [busy_customer])),
        ]
        for label, query, floor in filters:
            if query == "view=mine" and me is None:
                floor = (f"SELECT id FROM {conv} WHERE 1 = 0", [])
            run(f"/conversations/?{label}", role, f"/conversations/?{query}", floor, "html")
        for label, q in SEARCHES.items():
            # The same first page's ids from one hand-written statement (bench/search_floor.py).
            run(f"/conversations/?q= ({label[7:]})", role, "/conversations/?" + urlencode({"view": "", "q": q}),
                search_floor.floor(q, stores, me.pk if me else None), "html")
        # The message list (received mail), newest first.
        incoming = Message.objects.filter(direction="in")
        mb: list[tuple[str, list[Any]]] = [("direction = %s", ["in"])] if me is None else [
            ("direction = %s AND store_id = %s", ["in", store.pk]), ("direction = %s AND agent_id = %s", ["in", me.pk])]
        if me is not None:
            incoming = incoming.filter(Q(store_id__in=stores) | Q(agent_id=me.pk))
        mdepth = min(DEEP, incoming.count() // 2)
        mdeep = incoming.order_by("-created_at", "-id").values_list("created_at", "id")[mdepth]
        run("/inbox/", role, "/inbox/", union_newest(msg, "created_at", mb, 50))
        for label, q in SEARCHES.items():  # the Messages page's search (the full-text index, newest first)
            if "phrase" not in label:
                run(f"/inbox/?q= ({label[7:]})", role, "/inbox/?" + urlencode({"q": q}), None)
        mcursor = f"{mdeep[0].isoformat()}~{mdeep[1]}"
        run(f"/inbox/ deep ({mdepth:,})", role, "/inbox/?" + urlencode({"before": mcursor}),
            union_newest(msg, "created_at", mb, 50, before=mdeep))
        run("/api/v1/conversations/", role, "/api/v1/conversations/", conv_floor(), "json")
        run(f"/api/v1/conversations/ deep ({depth:,})", role, "/api/v1/conversations/?" + urlencode({"before": cursor}),
            conv_floor(before=deep), "json")
        allm = Message.objects.all()
        ab: list[tuple[str, list[Any]]] = [("", [])] if me is None else [("store_id = %s", [store.pk]),
                                                                          ("agent_id = %s", [me.pk])]
        if me is not None:
            allm = allm.filter(Q(store_id__in=stores) | Q(agent_id=me.pk))
        adepth = min(DEEP, allm.count() // 2)
        adeep = allm.order_by("-created_at", "-id").values_list("created_at", "id")[adepth]
        run("/api/v1/messages/", role, "/api/v1/messages/", union_newest(msg, "created_at", ab, 100), "json")
        run(f"/api/v1/messages/ deep ({adepth:,})", role,
            "/api/v1/messages/?" + urlencode({"cursor": drf_cursor(adeep[0])}),
            union_newest(msg, "created_at", ab, 100, before=(adeep[0], 0)), "json")
        cb = [("", [])] if me is None else [("store_id = %s", [store.pk]), ("agent_id = %s", [me.pk])]
        run("/customers/", role, "/customers/", union_newest(cust, "created_at", cb, 50))
        run("/tickets/", role, "/tickets/", union_newest(tick, "updated_at", cb, 50))  # last changed first
        run("/notifications/", role, "/notifications/",
            union_newest(note, "created_at", [("user_id = %s", [user.pk])], 50))
        sb = [("", [])] if me is None else [("store_id = %s", [store.pk])]
        run("/job-applicants/", role, "/job-applicants/", union_newest(appl, "created_at", sb, 50))
        run("/api/v1/customers/", role, "/api/v1/customers/", union_newest(cust, "created_at", cb, 100), "json")
        run("/api/v1/tickets/", role, "/api/v1/tickets/", union_newest(tick, "updated_at", cb, 100), "json")
        run("/api/v1/job-applicants/", role, "/api/v1/job-applicants/", union_newest(appl, "created_at", sb, 100),
            "json")
        run("/api/v1/notifications/", role, "/api/v1/notifications/",
            union_newest(note, "created_at", [("user_id = %s", [user.pk])], 100), "json")
        run("/api/v1/email-accounts/", role, "/api/v1/email-accounts/",
            (f"SELECT id FROM {acct}" + ("" if me is None else " WHERE store_id = %s") + " ORDER BY email_address, id"
             " LIMIT 100", [] if me is None else [store.pk]), "json")
        if me is None:  # the audit log is the administrators' (a 403 for the others, tested)
            run("/settings/audit/", role, "/settings/audit/", newest(audit, "at", "", [], 50))
            run("/api/v1/audit/", role, "/api/v1/audit/", newest(audit, "at", "", [], 100), "json")
        run("/settings/email/accounts/", role, "/settings/email/accounts/",
            (f"SELECT id FROM {acct}" + ("" if me is None else " WHERE store_id = %s") + " ORDER BY email_address"
             " LIMIT 50", [] if me is None else [store.pk]))
        opened = Conversation.objects.filter(store=store, message_count__gte=5).order_by("-last_message_at").first()
        assert opened is not None
        run("/conversations/<id>/", role, f"/conversations/{opened.pk}/",
            (f"SELECT id FROM {msg} WHERE conversation_id = %s ORDER BY created_at, id LIMIT 500", [opened.pk]))
        run("/customers/<id>/", role, f"/customers/{busy_customer}/",
            union_newest(conv, "last_message_at", [("customer_id = %s", [busy_customer])], 50))

    print()
    print(f"Workspace at volume: {data.messages:,} messages, {data.conversations:,} conversations, "
          f"{sum(len(c) for c in data.customers.values()):,} customers, {connection.vendor}"
          f"{'' if args.no_analyze else ', with planner statistics'}; "
          f"p50/p95 of {args.repeat} runs after {args.warmup} warm-up")
    print()
    print("| page | role | p50 ms | p95 ms | queries | floor p95 ms | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        floor = f"{r['floor_p95']:.1f}" if "floor_p95" in r else "-"
        ratio = f"{r['ratio']:.1f}" if r.get("ratio") else "-"
        mark = "" if r.get("same_ids", True) else " (ids differ)"
        print(f"| {r['page']} | {r['role']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['queries']} | {floor} "
              f"| {ratio}{mark} |")
    print()
    print("Slowest pages (p95) and the plan of their slowest query:")
    for r in sorted(results, key=lambda r: -r["p95"])[:5]:
        print(f"\n## {r['page']} as {r['role']}: p95 {r['p95']:.1f} ms; slowest query {r['slowest_ms']:.1f} ms")
        print(r["slowest_sql"][:1500])
        print(explain(r["slowest_sql"]))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"vendor": connection.vendor, "messages": data.messages, "conversations": data.conversations,
                       "seed_seconds": data.seconds, "analyze": not args.no_analyze, "repeat": args.repeat,
                       "pages": results}, out, indent=1, default=str)


if __name__ == "__main__":
    main()
