"""The agent groups that reach store-less mail are columns of each message and conversation.

The rule (buzon.crm.roles): a group's agents see the store-less mail their group brought in (the
customer's group; a store-less account's group), never a store's, and its conversations with it
(every page agrees). It is decided on the row's own columns (buzon.messages.reach), kept current by
the database, so these tests move customers between groups and accounts into stores the way people
do and check what each agent then sees in the lists, the detail pages, the API and search.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from buzon.core import kept_columns
from buzon.crm import roles
from buzon.crm.models import AgentGroup, Customer
from buzon.inbound import pipeline
from buzon.mailboxes.models import EmailAccount, EmailDomain
from buzon.messages import reach
from buzon.messages.conversations import Conversation
from buzon.messages.models import Message
from buzon.workspace import customer_merge
from tests.inbound.helpers import mail, store_raw, support_account
from tests.security.conftest import World


def _storeless_mail(group: AgentGroup | None, address: str, word: str) -> Message:
    """Mail from a customer of its own to a store-less account (in ``group``, or none), through the
    real pipeline; ``word`` is in its subject alone (what the lists and search are asked for)."""
    account = support_account(email_address=address, agent_group=group,
                              domain=EmailDomain.objects.create(domain_name=address.split("@")[1]))
    raw = mail(sender=f"Cliente <{word}@cliente.test>", to=address, subject=f"Consulta {word}")
    pipeline.run_pipeline(store_raw(raw, account).pk)
    message = Message.objects.get(account=account)
    assert message.store_id is None and message.customer is not None and message.conversation_id
    return message


def _sees(world: World, role: str, message: Message) -> dict[str, bool]:
    """Whether ``role`` finds ``message`` (and its conversation) in each place people look."""
    client, api = world.client(role), APIClient()
    api.force_authenticate(world.users[role])
    conversation, word = message.conversation_id, message.subject.split()[-1]
    marker = f'data-conversation="{conversation}"'
    return {
        "inbox": message.subject[:12] in client.get("/inbox/").content.decode(),
        "message": client.get(f"/inbox/{message.pk}/").status_code == 200,
        "conversations": marker in client.get("/conversations/?view=").content.decode(),
        "conversation": client.get(f"/conversations/{conversation}/").status_code == 200,
        "api message": api.get(f"/api/v1/messages/{message.pk}/").status_code == 200,
        "api conversation": api.get(f"/api/v1/conversations/{conversation}/").status_code == 200,
        "search": marker in client.get(f"/conversations/?view=&q={word}").content.decode(),
    }


def _everywhere(world: World, role: str, message: Message) -> bool:
    seen = _sees(world, role, message)
    assert len(set(seen.values())) == 1, (role, seen)  # every place agrees
    return next(iter(seen.values()))


def _columns(message: Message) -> tuple[tuple[int | None, int | None], tuple[int | None, int | None]]:
    row = Message.objects.filter(pk=message.pk).values_list("customer_group_id", "account_group_id").get()
    conversation = Conversation.objects.filter(pk=message.conversation_id).values_list(
        "customer_group_id", "account_group_id").get()
    return row, conversation


def test_a_customer_moved_to_another_group_moves_the_reach_of_its_mail(world: World):
    first, second = AgentGroup.objects.create(name="Primero"), AgentGroup.objects.create(name="Segundo")
    world.agents["agent_b"].groups.add(first)
    world.agents["agent_a"].groups.add(second)
    message = _storeless_mail(None, "hola@sin-grupo.test", "zorzal")  # an account in no group
    customer = message.customer
    assert not _everywhere(world, "agent_b", message) and not _everywhere(world, "agent_a", message)

    customer.agent_group = first
    customer.save(update_fields=["agent_group"])
    assert _columns(message) == ((first.pk, None), (first.pk, None))
    assert _everywhere(world, "agent_b", message) and not _everywhere(world, "agent_a", message)

    customer.agent_group = second  # moved to another group: the reach of its message goes with it
    customer.save(update_fields=["agent_group"])
    assert _columns(message) == ((second.pk, None), (second.pk, None))
    assert not _everywhere(world, "agent_b", message) and _everywhere(world, "agent_a", message)

    second.delete()  # a group deleted reaches nothing any more, and nobody else gains it
    assert _columns(message) == ((None, None), (None, None))
    assert not _everywhere(world, "agent_a", message) and _everywhere(world, "admin", message)


def test_a_store_less_accounts_group_sees_its_mail_and_not_another_stores(world: World):
    group = AgentGroup.objects.create(name="Equipo sin tienda")
    world.agents["agent_b"].groups.add(group)
    message = _storeless_mail(group, "hola@grupo.test", "gorrion")
    account, customer = message.account, message.customer
    # Reached through the account, whatever group the customer is in.
    Customer.objects.filter(pk=customer.pk).update(agent_group=None, agent=None)
    Message.objects.filter(customer=customer).update(agent=None)
    Conversation.objects.filter(customer=customer).update(agent=None)
    assert _columns(message) == ((None, group.pk), (None, group.pk))
    assert _everywhere(world, "agent_b", message) and not _everywhere(world, "agent_a", message)
    # Store A's message stays A's, even with its customer and account given the store-less group.
    Customer.objects.filter(pk=world.a.customer.pk).update(agent_group=group)
    EmailAccount.objects.filter(pk=world.a.account.pk).update(agent_group=group)
    assert _columns(world.a.message) == ((None, None), (None, None))
    assert not _everywhere(world, "agent_b", world.a.message)

    account.store = world.a.store  # the account moved into a store: its group's reach ends there
    account.save()
    assert _columns(message) == ((None, None), (None, None))
    assert not _everywhere(world, "agent_b", message)
    assert not _everywhere(world, "agent_a", message)  # the message stays store-less: not store A's either
    account.store = None
    account.save()
    assert _everywhere(world, "agent_b", message)


def test_merging_customer_cards_moves_their_mail_into_the_kept_cards_group(world: World):
    group = AgentGroup.objects.create(name="Equipo sin tienda")
    world.agents["agent_b"].groups.add(group)
    kept = _storeless_mail(None, "uno@sin-grupo.test", "vencejo")
    other = _storeless_mail(group, "dos@grupo.test", "jilguero")
    assert other.customer.agent_group_id == group.pk and kept.customer.agent_group_id is None
    assert not _everywhere(world, "agent_b", kept)
    customer_merge.merge_customers(world.users["admin"], kept.customer_id, other.customer_id)
    # The kept card takes the other's group: both cards' message is now the group's.
    assert _columns(kept)[0] == (group.pk, None) and _columns(other)[0] == (group.pk, group.pk)
    assert _everywhere(world, "agent_b", kept)


@pytest.mark.django_db
def test_the_columns_are_filled_for_mail_already_there_and_their_triggers_come_back():
    editor = SimpleNamespace(connection=connection)  # what a migration's RunPython is given, as used
    group = AgentGroup.objects.create(name="Equipo")
    customer = Customer.objects.create(name="Cliente", agent_group=group)
    account = EmailAccount.objects.create(email_address="a@sin-tienda.test", agent_group=group)
    reach.uninstall(editor)  # as before the migration: nothing keeps the columns
    message = Message.objects.create(direction="in", account=account, customer=customer, subject="x")
    assert _columns(message) == ((None, None), (None, None))
    reach.install(editor)  # what the migration does: triggers, and the rows already there filled
    assert _columns(message) == ((group.pk, group.pk), (group.pk, group.pk))
    if connection.vendor == "sqlite":
        # A table rebuilt by a later migration loses its triggers; post_migrate puts them back.
        with connection.cursor() as cursor:
            for statement in kept_columns.sqlite_drop(reach.COLUMNS[0]):
                cursor.execute(statement)
        Customer.objects.filter(pk=customer.pk).update(agent_group=None)
        reach.ensure(connection)
        assert _columns(message)[0] == (None, group.pk)


def test_the_role_rule_needs_distinct_only_where_a_path_can_repeat_a_row():
    repeating = {label for label in roles.SCOPES if roles.repeats_rows(_model(label))}
    assert repeating == {"crm.Agent", "mailboxes.EmailDomain"}  # many-to-many stores; reverse accounts


def _model(label: str):
    from django.apps import apps

    return apps.get_model(label)


LISTS = ("/inbox/", "/conversations/?view=", "/api/v1/messages/", "/api/v1/conversations/",
         "/api/v1/customers/", "/api/v1/tickets/", "/api/v1/search/?q=Fotos")


@pytest.mark.parametrize("role", ["agent_a", "supervisor_a"])
def test_no_list_as_an_agent_asks_for_distinct_rows_that_cannot_repeat(world: World, role: str):
    group = AgentGroup.objects.create(name="Equipo sin tienda")
    world.agents[role].groups.add(group)  # the group paths in the condition too
    client, api = world.client(role), APIClient()
    api.force_authenticate(world.users[role])
    tables = ("messages_app_message", "messages_app_conversation", "messages_app_attachment", "crm_customer",
              "crm_ticket")
    for url in LISTS:
        with CaptureQueriesContext(connection) as queries:
            answer = (api if url.startswith("/api/") else client).get(url)
        assert answer.status_code == 200, url
        for sql in (q["sql"] for q in queries.captured_queries):
            # DISTINCT over a table's rows (a subquery's too, U0 ...); not over a merge of ids, nor
            # search's own DISTINCT ON.
            for found in re.finditer(r'SELECT DISTINCT (?:"(\w+)"|(U\d+))\."', sql):
                alias = re.search(rf'FROM "(\w+)" {found.group(2)}\b', sql) if found.group(2) else None
                assert (found.group(1) or (alias.group(1) if alias else "")) not in tables, (url, sql)
