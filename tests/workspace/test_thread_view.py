"""The conversation page shows each message's own words with its quoted history folded, and each
attachment with its size, images as thumbnails and text viewable, through the signed, sandboxed
preview URL; the agent of another store gets nothing of it."""

from __future__ import annotations

import base64
import re
from email.message import EmailMessage

import pytest

from buzon.inbound import pipeline
from buzon.messages.models import Message
from tests.inbound.helpers import store_raw
from tests.security.conftest import World

pytestmark = pytest.mark.django_db
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
                       "AAAABJRU5ErkJggg==")


def _reply(world: World) -> Message:
    mail = EmailMessage()
    mail["From"] = "Cliente <cliente@cliente.test>"
    mail["To"] = world.a.account.email_address
    mail["Subject"] = "Re: Su pedido"
    mail["Message-ID"] = "<respuesta-1@cliente.test>"
    mail.set_content("Llegó roto, les mando la foto y el albarán.\n\n"
                     "El mar, 3 dic 2026 a las 10:00, Tienda <hola@tienda.test> escribió:\n"
                     "> Su pedido sale hoy.\n> Un saludo\n")
    mail.add_attachment(PNG, maintype="image", subtype="png", filename="foto.png")
    mail.add_attachment("Albarán nº 12: 3 cajas".encode("latin-1"), maintype="text", subtype="plain",
                        filename="albaran.txt", params={"charset": "iso-8859-1"})
    pipeline.run_pipeline(store_raw(mail.as_bytes(), world.a.account).pk)
    return Message.objects.get(message_id="<respuesta-1@cliente.test>")


def test_own_words_first_history_folded_attachments_previewed(world: World):
    message = _reply(world)
    ana = world.client("agent_a")
    page = ana.get(f"/conversations/{message.conversation_id}/").content.decode()
    card = page[page.index(f'data-message="{message.pk}"'):]
    words = card[card.index('class="mb-0 message-text"'):]
    assert words.index("Llegó roto") < words.index('class="mt-2 quoted-history"') < words.index("Su pedido sale hoy")
    assert "Show quoted text" in card
    image = re.search(r'<img class="d-block mb-1 rounded attachment-preview" src="([^"]+)"', card)
    text = re.search(r'href="([^"]+)" target="_blank" rel="noopener noreferrer" class="attachment-view"', card)
    assert image and text
    assert "foto.png" in card and "albaran.txt" in card and "bytes" in card  # sizes, in words

    shown = ana.get(image.group(1).replace("&amp;", "&"))
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png" and shown.content == PNG
    assert "sandbox" in shown["Content-Security-Policy"]
    plain = ana.get(text.group(1).replace("&amp;", "&"))
    assert plain["Content-Type"] == "text/plain; charset=utf-8"
    assert plain.content.decode("utf-8") == "Albarán nº 12: 3 cajas" and "sandbox" in plain["Content-Security-Policy"]

    bruno = world.client("agent_b")
    assert bruno.get(f"/conversations/{message.conversation_id}/").status_code == 404
    # A preview URL names its attachment and the person it was shown to: another attachment's id
    # with it is a 404.
    other = re.sub(r"/attachments/(\d+)/", f"/attachments/{world.b.attachment.pk}/", image.group(1))
    assert bruno.get(other.replace("&amp;", "&")).status_code == 404


def test_spanish_page(world: World):
    message = _reply(world)
    ana = world.client("agent_a")
    ana.cookies["django_language"] = "es"
    page = ana.get(f"/conversations/{message.conversation_id}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Mostrar el texto citado" in page and ">Ver</a>" in page
