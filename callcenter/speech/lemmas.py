"""Split a transcript into words and look each word up in pymorphy3's Russian dictionary.

The analyzer is loaded once per process, on first use, and every word's analysis is cached:
transcripts repeat the same few thousand words, so the tagger pays pymorphy's cost once per word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pymorphy3

_WORD_RE = re.compile(r"[0-9a-zа-я]+")


@dataclass(frozen=True, slots=True)
class Parse:
    """One dictionary reading of a word: its lemma and the grammemes of that reading."""

    lemma: str
    grammemes: frozenset[str]


@dataclass(frozen=True, slots=True)
class WordForm:
    """A word as written (``surface``) with all its dictionary readings, best first."""

    surface: str
    parses: tuple[Parse, ...]

    @property
    def lemmas(self) -> tuple[str, ...]:
        """Return the distinct lemmas of the readings, best first."""
        return tuple(dict.fromkeys(p.lemma for p in self.parses))


def normalize(text: str) -> str:
    """Lowercase and write ``е`` for ``ё``, as the recognizer usually does.

    >>> normalize("Ещё ЁЛКА")
    'еще елка'
    """
    return text.lower().replace("ё", "е")


def tokenize(text: str) -> list[str]:
    """Split a transcript into normalized words; hyphens and anything else separate words.

    >>> tokenize("Что-то  дороговато, ёлки")
    ['что', 'то', 'дороговато', 'елки']
    """
    return _WORD_RE.findall(normalize(text))


@lru_cache(maxsize=1)
def _analyzer() -> pymorphy3.MorphAnalyzer:
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=200_000)
def analyze(word: str) -> WordForm:
    """Return every dictionary reading of one normalized word (cached per word).

    >>> analyze("боюсь").lemmas
    ('бояться',)
    >>> analyze("к").lemmas
    ('к',)
    """
    found = _analyzer().parse(word)
    # A speech recognizer writes words, not abbreviations: "к" is not "как", "по" is not a noun.
    spoken = [p for p in found if "Abbr" not in p.tag.grammemes] or found
    parses = tuple(
        dict.fromkeys(Parse(normalize(p.normal_form), frozenset(p.tag.grammemes)) for p in spoken)
    )
    return WordForm(word, parses)


def known_grammemes() -> frozenset[str]:
    """Return every grammeme name the dictionary can produce (used to check rule files)."""
    return frozenset(_analyzer().TagClass.KNOWN_GRAMMEMES)
