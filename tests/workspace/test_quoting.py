"""The quoted history at the end of a plain-text mail is folded; nothing a person wrote is hidden."""

from __future__ import annotations

import pytest

from buzon.messages.quoting import split_quoted

CASES = [
    ("Gracias, ya llegó.\n\nEl mar, 3 dic 2026 a las 10:00, Tienda <hola@tienda.test> escribió:\n"
     "> Su pedido sale hoy.\n> Saludos\n", "Gracias, ya llegó.", "El mar, 3 dic 2026"),
    ("Thanks!\nOn Tue, Dec 3, 2026 at 10:00 AM Shop <hola@tienda.test>\nwrote:\n> Your order ships today.\n",
     "Thanks!", "On Tue"),
    ("Fine by me.\n\n-----Original Message-----\nFrom: Shop\nSent: Tuesday\nSubject: Order\n\nIt ships today.\n",
     "Fine by me.", "-----Original Message-----"),
    ("Vale.\n\nDe: Tienda <hola@tienda.test>\nEnviado: martes\nPara: Ana\n\nSale hoy.\n", "Vale.", "De: Tienda"),
    ("Just my words.\n-- \nAna\n", "Just my words.\n-- \nAna\n", ""),
]


@pytest.mark.parametrize(("text", "own", "quoted_start"), CASES)
def test_the_history_is_folded(text: str, own: str, quoted_start: str):
    mine, quoted = split_quoted(text)
    assert mine == own
    assert quoted.startswith(quoted_start) if quoted_start else quoted == ""
    assert (mine + quoted).replace("\n", "") in text.replace("\n", "") or quoted == ""


def test_answers_between_quotes_are_never_hidden():
    text = "> ¿Talla M?\nSí, la tenemos.\n> ¿Y en azul?\nTambién.\n"
    assert split_quoted(text) == (text, "")


def test_a_mail_of_quotes_only_stays_whole():
    text = "> reenviado sin comentario\n> línea dos\n"
    assert split_quoted(text) == (text, "")
