"""Caller numbers → one E.164 form; withheld and garbage → None."""

from __future__ import annotations

import pytest

from callcenter.patients.phone import is_withheld, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("89039556279", "+79039556279"),  # 8 trunk prefix
        ("+79156848745", "+79156848745"),  # already E.164
        ("74958369006", "+74958369006"),  # country code without plus
        ("9153732622", "+79153732622"),  # ten digits, mobile
        ("4996125352", "+74996125352"),  # ten digits, Moscow landline
        ("+74999641341", "+74999641341"),
        (" 8 (915) 373-26-22 ", "+79153732622"),  # a human typed it
    ],
)
def test_russian_formats_normalize_to_e164(raw: str, expected: str) -> None:
    """Numbers arrive as +7…, 8…, 7… or 10 digits and become one E.164 form."""
    assert normalize_phone(raw) == expected


def test_one_person_in_two_formats_is_one_number() -> None:
    """The burst trace's repeat caller dials as +79777228464 and as 89777228464."""
    assert normalize_phone("+79777228464") == normalize_phone("89777228464") == "+79777228464"


@pytest.mark.parametrize(
    "raw", ["anonymous", "Anonymous", "<unknown>", "", "unknown", "abc", "123", None]
)
def test_withheld_or_garbage_normalizes_to_none(raw: str | None) -> None:
    """Withheld numbers and garbage give None, never a made-up number."""
    assert normalize_phone(raw) is None


@pytest.mark.parametrize("raw", ["8-800-FLOWERS", "7495123", "+7 903 955 62 79 ext. 5"])
def test_letters_and_invalid_lengths_normalize_to_none(raw: str) -> None:
    """Letters never become digits, and a number too short for its range is not a number."""
    assert normalize_phone(raw) is None


@pytest.mark.parametrize("raw", ["anonymous", "ANONYMOUS", "<unknown>", "unknown", "", None])
def test_withheld_markers_are_withheld(raw: str | None) -> None:
    """Asterisk's markers for a hidden caller ID count as withheld."""
    assert is_withheld(raw)


@pytest.mark.parametrize("raw", ["89039556279", "abc", "123"])
def test_numbers_and_garbage_are_not_withheld(raw: str) -> None:
    """Garbage is bad input, not a withheld number; a number is neither."""
    assert not is_withheld(raw)
