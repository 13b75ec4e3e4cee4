"""Placeholders in script lines: which are known, how they are checked and filled (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

#: Every placeholder a script line may use; all come from the screen-pop card.
PLACEHOLDERS = frozenset({"name", "doctor", "months_since_visit", "clinic"})

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_FIELD = re.compile(r"[a-z_]+")
# Russian patronymics (and the Turkic «оглы»/«кызы» written as a separate word).
_PATRONYMIC = re.compile(r"(вич|вна|чна|ична|инична|оглы|кызы)$", re.IGNORECASE)
# Words of an offer: a line with one is marketing and needs the patient's marketing consent.
# A bare percentage is not one («на 100 % безопасно»); a minus one is («−15 % на чистку»).
_MARKETING_WORDS = re.compile(
    r"\b(скидк\w*|акци[яиюей]\w*|бесплатн\w*|подар\w*|промокод\w*|спецпредложени\w*"
    r"|распродаж\w*|кэшбэк\w*|кешбэк\w*)|[-−–]\s?\d+\s*%",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateProblem:
    """Something wrong with one template; ``needle`` is text to find its line by."""

    message: str
    needle: str


def placeholders_in(template: str) -> frozenset[str]:
    """Return the placeholder names a well-formed template uses.

    >>> sorted(placeholders_in("Здравствуйте, {name}! Клиника «{clinic}»."))
    ['clinic', 'name']
    """
    return frozenset(match.group(1) for match in _PLACEHOLDER.finditer(template))


def check_template(template: str) -> list[TemplateProblem]:
    """Return what is wrong with the template's placeholders (empty when it is fine).

    >>> [p.message for p in check_template("Здравствуйте, {nmae}!")]
    ["unknown placeholder '{nmae}' (known: clinic, doctor, months_since_visit, name)"]
    >>> [p.message for p in check_template("Здравствуйте, {name!")]
    ["broken placeholder: unmatched '{' in 'Здравствуйте, {name!'"]
    """
    problems: list[TemplateProblem] = []
    for match in _PLACEHOLDER.finditer(template):
        field = match.group(1)
        if not _FIELD.fullmatch(field) or field not in PLACEHOLDERS:
            known = ", ".join(sorted(PLACEHOLDERS))
            problems.append(
                TemplateProblem(
                    message=f"unknown placeholder '{match.group(0)}' (known: {known})",
                    needle=match.group(0),
                )
            )
    # Whatever braces remain once the well-formed placeholders are gone are broken ones; literal
    # braces have no business in what an administrator says aloud.
    rest = _PLACEHOLDER.sub(lambda m: "\0" * len(m.group(0)), template)
    for index, char in enumerate(rest):
        if char in "{}":
            needle = _line_around(template, index)
            problems.append(
                TemplateProblem(
                    message=f"broken placeholder: unmatched '{char}' in {needle!r}",
                    needle=needle,
                )
            )
            break
    return problems


def marketing_word(text: str) -> str | None:
    """Return the first word that makes the text an offer (a discount, a promotion), or None.

    >>> marketing_word("На повторный визит действует скидка 10 %")
    'скидка'
    >>> marketing_word("Нет ли боли, отёка, температуры?") is None
    True
    """
    match = _MARKETING_WORDS.search(text)
    return match.group(0) if match else None


def fill(template: str, *, values: Mapping[str, str]) -> str:
    """Return the template with its placeholders replaced by ``values``.

    >>> fill("Здравствуйте, {name}!", values={"name": "Мария Петровна"})
    'Здравствуйте, Мария Петровна!'
    """
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def spoken_name(full_name: str | None) -> str | None:
    """Return how an administrator addresses the person: first name + patronymic, or first name.

    Clinic systems store «Фамилия Имя Отчество»; «Имя Отчество Фамилия» is recognised by the
    patronymic. A single word could be a surname, and initials cannot be said: both give None.

    >>> spoken_name("Иванова Мария Петровна")
    'Мария Петровна'
    >>> spoken_name("Мария Петровна Иванова")
    'Мария Петровна'
    >>> spoken_name("Иванова Мария")
    'Мария'
    >>> spoken_name("Алиев Руслан Тимур оглы")
    'Руслан Тимур оглы'
    >>> spoken_name("Иванова") is None
    True
    >>> spoken_name("Петров С. И.") is None  # initials are written, never said
    True
    """
    parts = (full_name or "").split()
    if len(parts) < 2 or any(part.endswith(".") for part in parts):
        return None
    if len(parts) >= 3 and _PATRONYMIC.search(parts[1]):
        return f"{parts[0]} {parts[1]}"
    if len(parts) >= 3 and _PATRONYMIC.search(parts[-1]):
        return " ".join(parts[1:])
    return parts[1]


def months_phrase(months: int) -> str:
    """Return the number of months with the noun in the right Russian form.

    >>> [months_phrase(n) for n in (1, 3, 7, 11, 21, 22)]
    ['1 месяц', '3 месяца', '7 месяцев', '11 месяцев', '21 месяц', '22 месяца']
    """
    if months % 100 in range(11, 15):
        noun = "месяцев"
    elif months % 10 == 1:
        noun = "месяц"
    elif months % 10 in (2, 3, 4):
        noun = "месяца"
    else:
        noun = "месяцев"
    return f"{months} {noun}"


def _line_around(template: str, index: int) -> str:
    """Return up to 20 characters either side of ``index``, within its own line."""
    start = template.rfind("\n", 0, index) + 1
    end = template.find("\n", index)
    end = len(template) if end == -1 else end
    return template[max(start, index - 20) : min(end, index + 20)]
