"""Caller numbers as Asterisk gives them → one E.164 form.

Russian numbers arrive as ``+7…``, ``8…`` (trunk prefix), ``7…`` or ten bare digits; they all
become ``+7XXXXXXXXXX``. The parsing is phonenumbers' (region RU), which already understands the
``8`` trunk prefix, so there is no hand-written digit surgery here.
"""

from __future__ import annotations

import re

import phonenumbers

#: What Asterisk and carriers put in CallerIDNum when the caller hid the number.
WITHHELD_MARKERS = frozenset(
    {"", "anonymous", "unknown", "<unknown>", "private", "restricted", "unavailable"}
)

_DEFAULT_REGION = "RU"
# Only digits, a leading plus and the usual separators: phonenumbers would otherwise turn
# letters into digits ("8-800-FLOWERS"), which a caller ID never means.
_DIALLABLE = re.compile(r"\+?[0-9 ()\-.]+")


def is_withheld(raw: str | None) -> bool:
    """Return True when the caller ID says the number was withheld.

    >>> is_withheld("anonymous"), is_withheld("<unknown>"), is_withheld(None), is_withheld(" ")
    (True, True, True, True)
    >>> is_withheld("89039556279"), is_withheld("abc")
    (False, False)
    """
    return raw is None or raw.strip().lower() in WITHHELD_MARKERS


def normalize_phone(raw: str | None) -> str | None:
    """Return the number in E.164 form, or None when it is withheld or not a phone number.

    >>> normalize_phone("89039556279")
    '+79039556279'
    >>> normalize_phone("+79156848745")
    '+79156848745'
    >>> normalize_phone("74958369006")
    '+74958369006'
    >>> normalize_phone("9153732622")
    '+79153732622'
    >>> normalize_phone("4996125352")
    '+74996125352'
    >>> normalize_phone("8 (903) 955-62-79")
    '+79039556279'
    >>> [normalize_phone(s) for s in ("anonymous", "<unknown>", "", "unknown", "abc", "123")]
    [None, None, None, None, None, None]
    >>> normalize_phone(None) is None
    True
    """
    if raw is None or is_withheld(raw):
        return None
    text = raw.strip()
    if not _DIALLABLE.fullmatch(text):
        return None
    try:
        number = phonenumbers.parse(text, _DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    # is_valid_number (not just is_possible_number) so short garbage like "123" or "7495123"
    # never becomes a callback task.
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
