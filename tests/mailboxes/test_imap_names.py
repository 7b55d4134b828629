from hypothesis import given
from hypothesis import strategies as st

from buzon.mailboxes import imap_names


def test_rfc3501_example():
    assert imap_names.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert imap_names.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"


def test_ampersand_and_spanish():
    assert imap_names.encode("Ventas & Compras") == "Ventas &- Compras"
    assert imap_names.encode("Gestión") == "Gesti&APM-n"
    assert imap_names.quoted('a "b"') == '"a \\"b\\""'


@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40))
def test_round_trip(name):
    encoded = imap_names.encode(name)
    assert encoded.isascii()
    assert imap_names.decode(encoded) == name
