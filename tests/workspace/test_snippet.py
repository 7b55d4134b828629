"""The inbox's snippet of a conversation (buzon.messages.placement.collapsed_start): the first
characters of its latest message's text, white space collapsed, read from only as much of the text
as they need."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from buzon.messages.placement import collapsed_start


def _whole(text: str, length: int) -> str:
    return re.sub(r"\s+", " ", text).strip()[:length]


@given(st.text(alphabet=" \t\r\n\u00a0\u2003\u3000ab.ñ", max_size=700), st.integers(min_value=1, max_value=60))
def test_the_snippet_is_what_the_whole_text_gives(text: str, length: int):
    assert collapsed_start(text, length) == _whole(text, length)


def test_runs_of_white_space_around_every_cut_it_reads_at():
    for length in (1, 2, 3, 200):
        for cut in (2 * length - 1, 2 * length, 2 * length + 1, 8 * length, 32 * length):
            for text in (" " * cut + "palabra " * 100, "a" * (cut - 1) + " " * 50 + "b" * 500,
                         "hola\n\n" * (cut // 6 + 1) + " \t " * cut + "fin", " " * (cut * 40) + "x",
                         ("a " * length)[:cut] + "\n" * 3 + "z" * length):
                assert collapsed_start(text, length) == _whole(text, length), (length, cut, text[:40])
