"""Tag a call transcript with outcome tags: pure text in, a set of tags out.

The vocabulary lives in ``tag_rules/*.toml`` (see ``tag_rules/README.md`` for the pattern
syntax); this module only compiles and runs it. Tags and their definitions come from
``../shared/outcomes/README.md``.

How one transcript is tagged:

1. The text is split into words and every word is looked up once (``lemmas.analyze``); each
   word becomes the set of vocabulary *atoms* it satisfies (a lemma, a word form, a prefix,
   a grammatical constraint).
2. Every pattern is tried where its first element occurs, giving match spans.
3. A rule fires when one of its patterns matches and that match is not negated (``не дорого``),
   not inside a span the administrator is speaking in (``вы говорили, что …``, ``если …``),
   not overlapped by one of the rule's blockers (``дорогие пациенты``), and has the rule's
   required context nearby.
4. Rules conditioned on other tags run last, then the wrong-number override applies.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, TextIO

from callcenter.speech.lemmas import Parse, WordForm, analyze, known_grammemes, tokenize

TAGS: tuple[str, ...] = (
    "price_objection",
    "booked",
    "callback_requested",
    "no_time",
    "fear",
    "went_elsewhere",
    "dissatisfied",
    "wrong_number",
    "do_not_call",
    "moved_away",
    "insurance",
    "thinking",
)

COMMON_FILE = "common.toml"
_SPEAKERS = ("patient", "any")
_RULE_KEYS = frozenset(
    {
        "name",
        "patterns",
        "blockers",
        "near",
        "near_before",
        "near_after",
        "requires",
        "unless",
        "unless_tags",
        "speaker",
        "negatable",
    }
)


class RuleError(ValueError):
    """A tag rule file is malformed (bad pattern, unknown set, unknown tag…)."""


# --- patterns ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Atom:
    """One test on a single word: ``kind`` is word (lemma or form), prefix, form or any."""

    kind: str
    text: str
    grammemes: tuple[frozenset[str], ...] = ()
    best_only: bool = False  # grammemes checked on the best reading only ("@@")

    def accepts(self, word: WordForm) -> bool:
        """Tell whether ``word`` passes this test."""
        parses: Sequence[Parse] = word.parses[:1] if self.best_only else word.parses
        if self.kind == "any":
            return self._grammemes_ok(parses)
        if self.kind == "form":
            return word.surface == self.text and self._grammemes_ok(parses)
        if self.kind == "word":
            if word.surface == self.text and self._grammemes_ok(parses):
                return True
            return self._grammemes_ok([p for p in parses if p.lemma == self.text])
        if word.surface.startswith(self.text) and self._grammemes_ok(parses):
            return True
        return self._grammemes_ok([p for p in parses if p.lemma.startswith(self.text)])

    def _grammemes_ok(self, parses: Sequence[Parse]) -> bool:
        if not parses:
            return False
        if not self.grammemes:
            return True
        return any(alt <= p.grammemes for p in parses for alt in self.grammemes)


@dataclass(frozen=True, slots=True)
class _Element:
    """One position of a pattern. ``atoms`` None means any word."""

    atoms: frozenset[int] | None
    negative: bool = False
    optional: bool = False
    gap: int = 0


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern: its source text and its elements."""

    source: str
    elements: tuple[_Element, ...]
    # atom sets of the required, positive elements after the first: a text that lacks any
    # of them cannot match, which is checked before trying each start
    required: tuple[frozenset[int], ...] = ()


class _Vocabulary:
    """Interns atoms, expands named sets and maps each word to the atoms it satisfies."""

    def __init__(self, known_grammemes: frozenset[str]) -> None:
        self._known = known_grammemes
        self._atoms: list[_Atom] = []
        self._ids: dict[_Atom, int] = {}
        self._by_text: dict[str, list[int]] = {}
        self._scan: list[int] = []  # prefix and any-word atoms: tested one by one
        self._cache: dict[str, frozenset[int]] = {}

    def atoms_of(self, word: str) -> frozenset[int]:
        """Return the ids of the atoms that ``word`` satisfies (cached per word)."""
        found = self._cache.get(word)
        if found is None:
            form = analyze(word)
            candidates = set(self._by_text.get(word, ()))
            for lemma in form.lemmas:
                candidates.update(self._by_text.get(lemma, ()))
            candidates.update(self._scan)
            found = frozenset(i for i in candidates if self._atoms[i].accepts(form))
            if len(self._cache) < 500_000:
                self._cache[word] = found
        return found

    def compile(self, source: str, sets: Mapping[str, Sequence[str]]) -> Pattern:
        """Compile one pattern string, with ``sets`` the named word sets it may use.

        :raises RuleError: on a syntax error, an unknown set or an unknown grammeme.
        """
        elements: list[_Element] = []
        gap: int | None = None
        for token in source.split():
            if token.startswith(".."):
                if gap is not None or not elements or not token[2:].isdigit():
                    raise RuleError(f"misplaced or bad gap {token!r} in pattern {source!r}")
                gap = int(token[2:])
                continue
            elements.append(self._element(token, gap or 0, source, sets))
            gap = None
        if not elements or gap is not None:
            raise RuleError(f"empty pattern or trailing gap in {source!r}")
        first = elements[0]
        if first.atoms is None or first.negative or first.optional:
            raise RuleError(f"pattern {source!r} must start with a plain, required word")
        required = tuple(
            e.atoms
            for e in elements[1:]
            if e.atoms is not None and not e.negative and not e.optional
        )
        return Pattern(source, tuple(elements), required)

    def _element(
        self, token: str, gap: int, source: str, sets: Mapping[str, Sequence[str]]
    ) -> _Element:
        optional = token.endswith("?") and len(token) > 1
        if optional:
            token = token[:-1]
        negative = token.startswith("!")
        if negative:
            token = token[1:]
        alternatives = token.split("|")
        # "a|b|c@past": a constraint written on the last alternative applies to every
        # alternative that has none of its own
        spec = alternatives[-1].partition("@")[2]
        if spec:
            alternatives = [a if "@" in a else f"{a}@{spec}" for a in alternatives]
        ids: set[int] = set()
        for alt in alternatives:
            if alt == "*":
                if negative:
                    raise RuleError(f"'!*' never matches, in pattern {source!r}")
                return _Element(None, False, optional, gap)
            ids.update(self._expand(alt, source, sets, ()))
        return _Element(frozenset(ids), negative, optional, gap)

    def _expand(
        self, alt: str, source: str, sets: Mapping[str, Sequence[str]], seen: tuple[str, ...]
    ) -> set[int]:
        text, at, spec = alt.partition("@")
        best_only = spec.startswith("@")
        if at and not spec.lstrip("@"):
            raise RuleError(f"empty grammeme list after @ in pattern {source!r}")
        grammemes = self._grammemes(spec.lstrip("@"), source) if spec else ()
        if not text:
            raise RuleError(f"empty alternative in pattern {source!r}")
        if text.startswith("$"):
            name = text[1:]
            if name not in sets:
                raise RuleError(f"unknown set ${name} in pattern {source!r}")
            if name in seen:
                raise RuleError(f"set ${name} refers to itself")
            ids: set[int] = set()
            for member in sets[name]:
                if grammemes and "@" not in member:
                    member = f"{member}@{spec}"
                ids.update(self._expand(member, source, sets, (*seen, name)))
            return ids
        text = text.replace("ё", "е")  # transcripts write е for ё; rules may use either
        if text == "*":
            atom = _Atom("any", "", grammemes, best_only)
        elif text.startswith("="):
            atom = _Atom("form", text[1:], grammemes, best_only)
        elif text.endswith("~"):
            atom = _Atom("prefix", text[:-1], grammemes, best_only)
        else:
            atom = _Atom("word", text, grammemes, best_only)
        if atom.kind != "any" and not _is_word(atom.text):
            raise RuleError(f"bad word {atom.text!r} in pattern {source!r}")
        if atom.text in self._known:
            raise RuleError(f"{atom.text!r} looks like a grammeme (missing @?) in {source!r}")
        return {self._intern(atom)}

    def _grammemes(self, spec: str, source: str) -> tuple[frozenset[str], ...]:
        alternatives = tuple(frozenset(alt.split(",")) for alt in spec.split("/"))
        unknown = set().union(*alternatives) - self._known
        if unknown:
            raise RuleError(f"unknown grammemes {sorted(unknown)} in pattern {source!r}")
        return alternatives

    def _intern(self, atom: _Atom) -> int:
        found = self._ids.get(atom)
        if found is not None:
            return found
        index = len(self._atoms)
        self._atoms.append(atom)
        self._ids[atom] = index
        if atom.kind in ("word", "form"):
            self._by_text.setdefault(atom.text, []).append(index)
        else:
            self._scan.append(index)
        self._cache.clear()
        return index


def _is_word(text: str) -> bool:
    """Tell whether ``text`` is one lowercase word in a single script (a typo guard).

    >>> _is_word("дорого"), _is_word("sms"), _is_word("дoрого"), _is_word("не дорого")
    (True, True, False, False)
    """
    return bool(re.fullmatch(r"[а-я0-9]+|[a-z0-9]+", text))


def _match_at(
    elements: tuple[_Element, ...], seq: Sequence[frozenset[int]], k: int, pos: int, extra: int
) -> int:
    """Return the end of a match of ``elements[k:]`` starting at ``pos``, or -1.

    ``elements[k]`` may begin up to its gap (plus ``extra``, the gap of skipped optional
    elements) words after ``pos``; the first way that works wins.
    """
    if k == len(elements):
        return pos
    element = elements[k]
    gap = element.gap + extra
    for p in range(pos, min(pos + gap + 1, len(seq))):
        if element.atoms is None:
            hit = True
        else:
            hit = element.negative == element.atoms.isdisjoint(seq[p])
        if hit:
            end = _match_at(elements, seq, k + 1, p + 1, 0)
            if end >= 0:
                return end
    if element.optional:
        return _match_at(elements, seq, k + 1, pos, gap)
    return -1


# --- rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One way a tag can be shown; a tag fires when any of its rules fires."""

    tag: str
    name: str
    patterns: tuple[Pattern, ...]
    blockers: tuple[Pattern, ...] = ()
    near: tuple[Pattern, ...] = ()
    near_before: int = 0
    near_after: int = 0
    requires: tuple[Pattern, ...] = ()
    unless: tuple[Pattern, ...] = ()
    unless_tags: frozenset[str] = frozenset()
    speaker: str = "patient"
    negatable: bool = True

    @property
    def sources(self) -> frozenset[str]:
        """Return the source strings of the rule's trigger patterns."""
        return frozenset(p.source for p in self.patterns)


@dataclass(frozen=True)
class _Negation:
    negators: frozenset[str]
    transparent: frozenset[str]
    modals: frozenset[str]
    conjunctions: frozenset[str]
    window: int


@dataclass
class _Text:
    """One transcript while it is being tagged: its words, their atoms and pattern matches."""

    words: list[str]
    seq: list[frozenset[int]]
    starts: list[tuple[str, ...]]  # per word: the patterns that may start there
    candidates: dict[str, list[int]] = field(init=False)
    _matches: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Where each pattern's first word occurs: patterns with no candidate never run.
        self.candidates = {}
        for i, sources in enumerate(self.starts):
            for source in sources:
                self.candidates.setdefault(source, []).append(i)
        self.present: frozenset[int] = frozenset().union(*self.seq)

    def matches(self, pattern: Pattern) -> list[tuple[int, int]]:
        """Return the (start, end) spans where ``pattern`` matches, one per start."""
        found = self._matches.get(pattern.source)
        if found is not None:
            return found
        found = []
        present = self.present
        if any(atoms.isdisjoint(present) for atoms in pattern.required):
            self._matches[pattern.source] = found
            return found
        for start in self.candidates.get(pattern.source, ()):
            end = _match_at(pattern.elements, self.seq, 1, start + 1, 0)
            if end >= 0:
                found.append((start, end))
        self._matches[pattern.source] = found
        return found

    def any_match(self, patterns: Iterable[Pattern]) -> bool:
        candidates = self.candidates
        return any(self.matches(p) for p in patterns if p.source in candidates)

    def spans(self, patterns: Iterable[Pattern]) -> list[tuple[int, int]]:
        candidates = self.candidates
        return [span for p in patterns if p.source in candidates for span in self.matches(p)]


class Tagger:
    """Outcome tagger compiled from a directory of TOML rule files; load once, reuse."""

    def __init__(self, rules_dir: Traversable | None = None) -> None:
        """Load and compile the rule files (the packaged ``tag_rules`` by default).

        :raises RuleError: if a rule file is malformed.
        """
        directory = rules_dir or resources.files("callcenter.speech").joinpath("tag_rules")
        files = {
            entry.name: tomllib.loads(entry.read_text(encoding="utf-8"))
            for entry in directory.iterdir()
            if entry.name.endswith(".toml")
        }
        if COMMON_FILE not in files:
            raise RuleError(f"{COMMON_FILE} is missing from the rule directory")
        common = files.pop(COMMON_FILE)
        self._common_sets: dict[str, list[str]] = dict(common.get("sets", {}))
        self._vocab = _Vocabulary(known_grammemes())
        self._negation = self._load_negation(common.get("negation", {}))
        self._admin_scopes = [
            (self._vocab.compile(source, self._common_sets), int(scope.get("extend", 0)))
            for scope in common.get("admin_scope", [])
            for source in scope["patterns"]
        ]
        override = common.get("override", {})
        self._override_tag: str | None = override.get("tag")
        self._override_keep = frozenset(override.get("keep", ()))
        self.rules: tuple[Rule, ...] = tuple(
            rule for name in sorted(files) for rule in self._load_rules(name, files[name])
        )
        self._rule_sources = [(rule, rule.sources) for rule in self.rules]
        self._anchors: dict[int, list[Pattern]] = {}
        self._starts_cache: dict[frozenset[int], tuple[str, ...]] = {}
        self._index_patterns()

    # -- loading --

    def _load_negation(self, data: Mapping[str, Any]) -> _Negation:
        return _Negation(
            negators=frozenset(data.get("negators", ())),
            transparent=frozenset(data.get("transparent", ())),
            modals=frozenset(data.get("modals", ())),
            conjunctions=frozenset(data.get("conjunctions", ())),
            window=int(data.get("window", 3)),
        )

    def _load_rules(self, filename: str, data: Mapping[str, Any]) -> list[Rule]:
        tag = data.get("tag")
        if tag not in TAGS:
            raise RuleError(f"{filename}: unknown or missing tag {tag!r}")
        sets = dict(self._common_sets)
        for set_name, members in data.get("sets", {}).items():
            if set_name in sets:
                raise RuleError(f"{filename}: set ${set_name} is already defined in {COMMON_FILE}")
            sets[set_name] = members
        return [
            self._compile_rule(tag, f"{filename} rule {index}", entry, sets)
            for index, entry in enumerate(data.get("rule", []))
        ]

    def _compile_rule(
        self, tag: str, where: str, entry: Mapping[str, Any], sets: Mapping[str, Sequence[str]]
    ) -> Rule:
        where = f"{where} ({entry.get('name', '?')})"
        unknown = set(entry) - _RULE_KEYS
        if unknown:
            raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
        speaker = entry.get("speaker", "patient")
        if speaker not in _SPEAKERS:
            raise RuleError(f"{where}: speaker must be one of {_SPEAKERS}")
        unless_tags = frozenset(entry.get("unless_tags", ()))
        if not unless_tags <= set(TAGS):
            raise RuleError(f"{where}: unknown tags in unless_tags")
        if not entry.get("patterns"):
            raise RuleError(f"{where}: no patterns")
        compiled: dict[str, tuple[Pattern, ...]] = {}
        for key in ("patterns", "blockers", "near", "requires", "unless"):
            try:
                compiled[key] = tuple(self._vocab.compile(s, sets) for s in entry.get(key, ()))
            except RuleError as exc:
                raise RuleError(f"{where}: {exc}") from exc
        return Rule(
            tag=tag,
            name=str(entry.get("name", where)),
            patterns=compiled["patterns"],
            blockers=compiled["blockers"],
            near=compiled["near"],
            near_before=int(entry.get("near_before", 0)),
            near_after=int(entry.get("near_after", 0)),
            requires=compiled["requires"],
            unless=compiled["unless"],
            unless_tags=unless_tags,
            speaker=speaker,
            negatable=bool(entry.get("negatable", True)),
        )

    def _index_patterns(self) -> None:
        patterns: dict[str, Pattern] = {}
        for rule in self.rules:
            for group in (rule.patterns, rule.blockers, rule.near, rule.requires, rule.unless):
                for p in group:
                    patterns[p.source] = p
        for p, _ in self._admin_scopes:
            patterns[p.source] = p
        for p in patterns.values():
            first = p.elements[0].atoms
            assert first is not None  # compile() guarantees a plain first element
            for atom in first:
                self._anchors.setdefault(atom, []).append(p)

    # -- tagging --

    def tag(self, text: str) -> frozenset[str]:
        """Return the outcome tags of one transcript (an empty set when none applies)."""
        words = tokenize(text)
        if not words:
            return frozenset()
        doc = self._read(words)
        admin = [
            (start, end + extend)
            for pattern, extend in self._admin_scopes
            for start, end in doc.matches(pattern)
        ]
        tags: set[str] = set()
        present = doc.candidates.keys()
        deferred = []
        for rule, sources in self._rule_sources:
            if rule.tag in tags or sources.isdisjoint(present):
                continue
            if rule.unless_tags:
                deferred.append(rule)
            elif self._fires(rule, doc, admin):
                tags.add(rule.tag)
        for rule in deferred:
            if rule.tag in tags or rule.unless_tags & tags:
                continue
            if self._fires(rule, doc, admin):
                tags.add(rule.tag)
        if self._override_tag in tags:
            tags &= {self._override_tag} | self._override_keep
        return frozenset(tags)

    def explain(self, text: str) -> list[str]:
        """Describe every rule match in ``text`` and why it counts or not (for rule authors)."""
        words = tokenize(text)
        doc = self._read(words)
        admin = [
            (start, end + extend)
            for pattern, extend in self._admin_scopes
            for start, end in doc.matches(pattern)
        ]
        lines = [f"admin span: {' '.join(words[s:e])!r}" for s, e in admin]
        for rule in self.rules:
            blocked = [(s, e, b.source) for b in rule.blockers for s, e in doc.matches(b)]
            for pattern in rule.patterns:
                for start, end in doc.matches(pattern):
                    why = []
                    if rule.negatable and self._negated(words, start):
                        why.append("negated")
                    if rule.speaker == "patient" and any(s <= start < e for s, e in admin):
                        why.append("administrator")
                    why += [f"blocked by {src!r}" for s, e, src in blocked if s < end and start < e]
                    lines.append(
                        f"{rule.tag} [{rule.name}] {pattern.source!r} → "
                        f"{' '.join(words[start:end])!r}" + (f" ({'; '.join(why)})" if why else "")
                    )
        return lines

    def _read(self, words: list[str]) -> _Text:
        seq, starts = [], []
        cache = self._starts_cache
        for word in words:
            atoms = self._vocab.atoms_of(word)
            seq.append(atoms)
            sources = cache.get(atoms)
            if sources is None:
                sources = tuple(
                    dict.fromkeys(p.source for atom in atoms for p in self._anchors.get(atom, ()))
                )
                cache[atoms] = sources
            starts.append(sources)
        return _Text(words, seq, starts)

    def _fires(self, rule: Rule, doc: _Text, admin: list[tuple[int, int]]) -> bool:
        # Cheapest checks first; blockers and context are matched only once a trigger survives.
        blocked: list[tuple[int, int]] | None = None
        near: list[tuple[int, int]] | None = None
        candidates = doc.candidates
        for pattern in rule.patterns:
            if pattern.source not in candidates:
                continue
            for start, end in doc.matches(pattern):
                if rule.negatable and self._negated(doc.words, start):
                    continue
                if rule.speaker == "patient" and any(s <= start < e for s, e in admin):
                    continue
                if blocked is None:
                    blocked = doc.spans(rule.blockers)
                if any(s < end and start < e for s, e in blocked):
                    continue
                if rule.near:
                    if near is None:
                        near = doc.spans(rule.near)
                    if not any(
                        s < end + rule.near_after and start - rule.near_before < e for s, e in near
                    ):
                        continue
                if rule.requires and not doc.any_match(rule.requires):
                    return False
                return not (rule.unless and doc.any_match(rule.unless))
        return False

    def _negated(self, words: Sequence[str], start: int) -> bool:
        """Tell whether a negation word governs the match starting at ``start``.

        It walks left over transparent words (``уже``, ``так``, ``очень``…), conjunctions and
        at most one modal (``не надо бояться``), up to the configured window; a modal beyond a
        conjunction belongs to another clause and stops the walk.
        """
        neg = self._negation
        modal_seen = conjunction_seen = False
        i = start - 1
        while i >= 0 and start - i <= neg.window:
            word = words[i]
            if word in neg.negators:
                return True
            if word in neg.modals and not modal_seen and not conjunction_seen:
                modal_seen = True
            elif word in neg.conjunctions:
                conjunction_seen = True
            elif word not in neg.transparent:
                return False
            i -= 1
        return False


@lru_cache(maxsize=1)
def default_tagger() -> Tagger:
    """Return the process-wide tagger built from the packaged rules."""
    return Tagger()


def tag_text(text: str) -> frozenset[str]:
    """Return the outcome tags of one transcript using the packaged rules.

    >>> sorted(tag_text("здравствуйте ой ну это дороговато я подумаю"))
    ['price_objection', 'thinking']
    """
    if not isinstance(text, str):
        raise TypeError(f"transcript must be a string, not {type(text).__name__}")
    return default_tagger().tag(text)


# --- command line -----------------------------------------------------------------------


def run_tag_command(
    infile: TextIO, outfile: TextIO, *, errfile: TextIO | None = None, tagger: Tagger | None = None
) -> int:
    """Tag JSON lines ``{"id", "text", …}`` from ``infile``; print ``{"id", "tags"}`` lines.

    A bad line is reported on ``errfile`` (stderr by default) with its line number and skipped;
    the exit code is 1 if any line was bad, 0 otherwise. Blank lines are ignored.
    """
    errors = errfile if errfile is not None else sys.stderr
    tagger = tagger or default_tagger()
    bad = 0
    for lineno, line in enumerate(infile, start=1):
        if not line.strip():
            continue
        call_id, text, problem = _read_call(line)
        if problem is not None:
            bad += 1
            label = f" (id {call_id!r})" if call_id is not None else ""
            errors.write(f"line {lineno}{label}: {problem}\n")
            continue
        tags = sorted(tagger.tag(text))
        outfile.write(json.dumps({"id": call_id, "tags": tags}, ensure_ascii=False) + "\n")
    return 1 if bad else 0


def _read_call(line: str) -> tuple[Any, str, str | None]:
    """Return (id, text, problem) for one input line; ``problem`` is None when it is usable."""
    try:
        call = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, "", f"not JSON ({exc.msg})"
    if not isinstance(call, dict):
        return None, "", "not a JSON object"
    call_id = call.get("id")
    if call_id is None:
        return None, "", "no id"
    text = call.get("text")
    if text is None:
        return call_id, "", "no text"
    if not isinstance(text, str):
        return call_id, "", "text is not a string"
    return call_id, text, None
