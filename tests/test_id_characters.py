"""A Chinese ID number ends in a digit or X: the ID check reads an X where the subscriber says or types one."""

from __future__ import annotations

import pytest

from duebot.actions import parsing, parsing_zh


@pytest.mark.parametrize(("said", "read"), [
    ("447X", "447X"), ("4 4 7 x", "447X"), ("my ID ends in 4 4 7 X", "447X"), ("four four seven x", "447X"),
    ("four four seven two", "4472"), ("next six", "6"), ("box 12", "12"), ("xx", ""),
])
def test_english_keeps_a_standalone_x_and_no_x_inside_a_word(said: str, read: str) -> None:
    assert parsing.parse_id_characters(said) == read


@pytest.mark.parametrize(("said", "read"), [
    ("447X", "447X"), ("４４７Ｘ", "447X"), ("四四七X", "447X"), ("尾号是447x", "447X"), ("四四七二", "4472"),
])
def test_mandarin_reads_full_width_and_spoken_digits_with_the_x(said: str, read: str) -> None:
    assert parsing_zh.parse_id_characters(said) == read
