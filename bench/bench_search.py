"""Full-text search of the inbox at volume: p50 / p95 of /conversations/?q=... through Django's test client.

Run: .venv/bin/python bench/bench_search.py [--messages 200000] [--repeat 20]
SQLite in a temporary data directory by default; with DATABASE_URL set, on that PostgreSQL database
instead (give an empty scratch database: the bench fills it). It seeds conversations of 1-6 messages
of realistic Spanish and English text (a Zipf-like vocabulary, accented words, a rare word, a phrase)
spread over 5 stores, each with customers and an attachment now and then, written with bulk inserts
(the triggers index them as they are written: the rate is printed), then times common word, rare
word, phrase and accent-less searches as an administrator and as an agent of one store.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time

os.environ.setdefault("BUZON_DATA_DIR", tempfile.mkdtemp(prefix="buzon-bench-search-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "buzon.settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0, interactive=False)

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from buzon.crm.models import Agent, Customer, Store  # noqa: E402
from buzon.messages.conversations import Conversation  # noqa: E402
from buzon.messages.models import Attachment, Direction, Message  # noqa: E402

COMMON = ("hola gracias pedido envío factura cliente producto tienda entrega cambio dirección problema "
          "devolución pago tarjeta semana día mañana correo respuesta consulta precio talla color stock "
          "order invoice shipping delivery refund payment address thanks please question return size "
          "the and for you your with this that have from will can would could about when where which "
          "el la de que y en los las por con para una un mi su es está son muy más pero como todo "
          "también ahora después antes nuevo nueva caja paquete número referencia canción información "
          "atención garantía reparación técnico urgente señor señora año niño café teléfono móvil").split()
NAMES = ("Lucía García", "José Martínez", "María López", "Ana Pérez", "Jorge Sánchez", "Carmen Gómez",
         "John Smith", "Emily Brown", "Peter Jones", "Sofía Díaz", "Íñigo Ruiz", "Nuria Peña")
SEARCHES = {
    "common word": "pedido",
    "rare word": "zarzamora",
    "phrase": '"cambio de dirección"',
    "accent-less": "direccion garantia",
    "prefix": "devol*",
}


def _text(rng: random.Random, weights: list[float]) -> str:
    words = rng.choices(COMMON, weights=weights, k=rng.randint(40, 140))
    if rng.random() < 0.0001:
        words.insert(rng.randrange(len(words)), "zarzamora")
    if rng.random() < 0.02:
        words[rng.randrange(len(words)):0] = ["cambio", "de", "dirección"]
    return " ".join(words).capitalize() + "."


def seed(total: int) -> tuple[list[Store], float]:
    rng = random.Random(7)
    weights = [1 / (rank + 1) for rank in range(len(COMMON))]
    rng.shuffle(weights)
    stores = [Store.objects.create(name=f"Tienda {i}") for i in range(5)]
    customers = Customer.objects.bulk_create(
        [Customer(name=f"{rng.choice(NAMES)} {i}", store=stores[i % 5]) for i in range(5000)])
    started, written = time.monotonic(), 0
    now = timezone.now()
    while written < total:
        with transaction.atomic():
            convs = Conversation.objects.bulk_create([
                Conversation(store=stores[i % 5], subject="", status="open") for i in range(1000)])
            messages, subjects = [], {}
            for conv in convs:
                customer = customers[rng.randrange(len(customers))]
                subject = " ".join(rng.choices(COMMON, weights=weights, k=rng.randint(2, 6))).capitalize()
                subjects[conv.pk] = subject
                for j in range(rng.randint(1, 6)):
                    written += 1
                    messages.append(Message(
                        direction=Direction.INCOMING if j % 2 == 0 else Direction.OUTGOING, store=conv.store,
                        conversation=conv, customer=customer, status="processed",
                        subject=("Re: " if j else "") + subject, text=_text(rng, weights),
                        from_name=customer.name, from_address=f"c{customer.pk}@example.test"))
            Message.objects.bulk_create(messages)
            Attachment.objects.bulk_create([
                Attachment(message=m, part=1, filename=f"factura-{m.pk}.pdf", content_type="application/pdf", size=1)
                for m in messages if rng.random() < 0.05])
            for conv in convs:
                conv.subject, conv.last_message_at = subjects[conv.pk], now - timezone.timedelta(minutes=conv.pk)
                conv.customer_id = next(m.customer_id for m in messages if m.conversation_id == conv.pk)
            Conversation.objects.bulk_update(convs, ["subject", "last_message_at", "customer"])
    return stores, written / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    logging.disable(logging.INFO)  # sign-in lines of each client
    print(f"database: {connection.vendor}; seeding {args.messages} messages...", flush=True)
    stores, rate = seed(args.messages)
    print(f"written and indexed by the triggers: {rate:,.0f} messages/s", flush=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    admin = User.objects.create_user("bench-admin", is_staff=True, is_superuser=True)
    agent_user = User.objects.create_user("bench-agent")
    Agent.objects.create(user=agent_user).stores.add(stores[0])
    print(f"{'search':<14} {'as':<6} {'results':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for label, q in SEARCHES.items():
        for who, user in (("admin", admin), ("agent", agent_user)):
            client = Client()
            client.force_login(user)
            times, body = [], b""
            for _ in range(args.repeat + 1):
                started = time.perf_counter()
                response = client.get("/conversations/", {"q": q})
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.status_code
                body = response.content
            times = sorted(times[1:])  # the first warms caches
            results = body.count(b"data-conversation=")
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(f"{label:<14} {who:<6} {results:>7} {statistics.median(times):>8.1f} {p95:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
