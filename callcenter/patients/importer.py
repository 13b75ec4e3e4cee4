"""``callcenter import-patients FILE.csv``: load a clinic's patient list from a CSV export.

The file: UTF-8 (with or without BOM) or Windows-1251, detected; ``;`` or ``,`` between fields,
sniffed from the header line; the first line names the columns, in any order, in English or
Russian (case and spaces do not matter):

============================  =====================================  ==========================
column                        also accepted                          value
============================  =====================================  ==========================
``full_name`` (required)      ФИО, Пациент                           text
``phones`` (required)         phone, Телефон, Телефоны               one or more numbers,
                                                                     separated by ``,`` ``;``
                                                                     ``|`` or ``/``
``birth_date``                Дата рождения                          DD.MM.YYYY or YYYY-MM-DD
``doctor``                    Врач, Лечащий врач                     text
``insurance_company``         Страховая, Страховая компания, ДМС     text
``policy_end``                Полис до, Окончание полиса             date
``pd_consent``                Согласие ПД, Согласие на обработку ПД  да/нет, yes/no, 1/0
``marketing_consent``         Согласие на рекламу, Реклама           да/нет, yes/no, 1/0
``last_visit_date``           Последний визит, Дата визита           date (optional column)
``last_visit_doctor``         Врач визита                            text (optional column)
``last_visit_service``        Услуга                                 text (optional column)
============================  =====================================  ==========================

A row is rejected, with its line number and the reason, for a missing name, a missing or bad
phone, a bad date or consent value, or a phone already used on an earlier line of the file; the
good rows are imported all the same. Patients are matched by phone: a row whose number is
already stored updates that patient (empty cells keep what is stored), so importing the same
file twice changes nothing the second time. An empty consent cell records nothing; ``да`` or
``нет`` records a consent given or withdrawn when it differs from the patient's current state.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from callcenter.patients.phone import normalize_phone

if TYPE_CHECKING:
    from callcenter.store.patients import RowResult

#: Header spellings, after folding (lower case, ``_`` and runs of spaces as one space).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "full_name": ("full name", "фио", "пациент"),
    "phones": ("phone", "телефон", "телефоны"),
    "birth_date": ("birth date", "дата рождения"),
    "doctor": ("врач", "лечащий врач"),
    "insurance_company": ("insurance company", "страховая", "страховая компания", "дмс"),
    "policy_end": ("policy end", "полис до", "окончание полиса"),
    "pd_consent": ("pd consent", "согласие пд", "согласие на обработку пд"),
    "marketing_consent": ("marketing consent", "согласие на рекламу", "реклама"),
    "last_visit_date": ("last visit date", "последний визит", "дата визита"),
    "last_visit_doctor": ("last visit doctor", "врач визита"),
    "last_visit_service": ("last visit service", "услуга"),
}
REQUIRED_COLUMNS = ("full_name", "phones")

_YES = frozenset({"да", "д", "yes", "y", "1", "true", "+", "есть"})
_NO = frozenset({"нет", "н", "no", "n", "0", "false", "-"})
_PHONE_SEPARATORS = re.compile(r"[,;|/]")
_DIALLABLE = re.compile(r"\+?[0-9 ()\-.]+")
_PLAIN_RU = re.compile(r"(\+7|8|7)?(\d{10})")
_NO_SEPARATORS = str.maketrans("", "", " ()-.")
_ROWS_PER_BATCH = 10_000
#: Files with fewer rows import too fast to need a progress line.
PROGRESS_MIN_ROWS = 10_000


class FastPhoneNormalizer:
    """``normalize_phone``, memoized by number class for plain Russian-format numbers.

    phonenumbers spends ~40 µs per number, most of a 100,000-row import. Whether a +7 number is
    valid depends only on its first six national digits (RU and KZ patterns end in ``\\d{n}``),
    so for ``[+7|8|7]`` + ten digits we ask phonenumbers once per (prefix, first six digits)
    with a stand-in ending, and fall back to ``normalize_phone`` for everything else.

    >>> normalize = FastPhoneNormalizer()
    >>> normalize("8 (903) 955-62-79"), normalize("+7 903 955-62-80"), normalize("123")
    ('+79039556279', '+79039556280', None)
    """

    def __init__(self) -> None:
        self._valid_class: dict[tuple[str, str], bool] = {}

    def __call__(self, raw: str) -> str | None:
        """Return the number in E.164 form, or None (exactly as ``normalize_phone``)."""
        text = raw.strip()
        if not _DIALLABLE.fullmatch(text):
            return normalize_phone(raw)
        match = _PLAIN_RU.fullmatch(text.translate(_NO_SEPARATORS))
        if match is None:
            return normalize_phone(raw)
        prefix, national = match.group(1) or "", match.group(2)
        key = (prefix, national[:6])
        valid = self._valid_class.get(key)
        if valid is None:
            stand_in = national[:6] + "0000"
            valid = normalize_phone(prefix + stand_in) == "+7" + stand_in
            self._valid_class[key] = valid
        return "+7" + national if valid else normalize_phone(raw)


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unreadable, no name or phone column)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientRow:
    """One valid file row, normalized."""

    line: int
    full_name: str
    phones: tuple[str, ...]  # E.164, in file order
    birth_date: date | None = None
    doctor: str | None = None
    insurance_company: str | None = None
    policy_end: date | None = None
    pd_consent: bool | None = None  # None: the file says nothing
    marketing_consent: bool | None = None
    last_visit_date: date | None = None
    last_visit_doctor: str | None = None
    last_visit_service: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedRow:
    """A file row that was not imported, and why."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedFile:
    """Every data row of a file: valid ones normalized, bad ones with a reason."""

    rows: tuple[PatientRow, ...]
    rejected: tuple[RejectedRow, ...]


def decode(data: bytes) -> str:
    """Return the file's text: UTF-8 when it decodes as such, otherwise Windows-1251.

    >>> decode("Иванов".encode("cp1251")), decode("Иванов".encode("utf-8-sig"))
    ('Иванов', 'Иванов')
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # cp1251 decodes almost any byte string, so it is the fallback, never the probe.
        return data.decode("cp1251")


def sniff_delimiter(header: str) -> str:
    """Return the field delimiter the header line uses: ``;`` or ``,`` (tab as a bonus).

    >>> sniff_delimiter("ФИО;Телефоны;Дата рождения"), sniff_delimiter("full_name,phones")
    (';', ',')
    """
    counts = {delimiter: header.count(delimiter) for delimiter in (";", ",", "\t")}
    return max(counts, key=lambda d: counts[d])


def fold_header(name: str) -> str:
    """Return a header cell in the form COLUMN_ALIASES spells it.

    >>> fold_header("  Дата_рождения "), fold_header("\\ufeffФИО")
    ('дата рождения', 'фио')
    """
    return " ".join(name.replace("\ufeff", "").replace("_", " ").split()).casefold()


def parse_date(text: str) -> date:
    """Return the date written as DD.MM.YYYY or YYYY-MM-DD.

    >>> parse_date("05.03.1984"), parse_date("1984-03-05")
    (datetime.date(1984, 3, 5), datetime.date(1984, 3, 5))
    >>> parse_date("31.02.1984")
    Traceback (most recent call last):
    ...
    ValueError: day is out of range for month
    """
    text = text.strip()
    if len(text) == 10 and text[2] == "." and text[5] == "." and text.replace(".", "").isdigit():
        # The usual DD.MM.YYYY, without the regular expression: two dates on every row.
        return date(int(text[6:]), int(text[3:5]), int(text[:2]))
    if re.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{4}", text):
        day, month, year = (int(part) for part in text.split("."))
        return date(year, month, day)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    raise ValueError(f"not DD.MM.YYYY or YYYY-MM-DD: {text!r}")


def parse_flag(text: str) -> bool | None:
    """Return a consent cell as True, False, or None when empty.

    >>> parse_flag("Да"), parse_flag("no"), parse_flag(" ")
    (True, False, None)
    """
    folded = text.strip().casefold()
    if not folded:
        return None
    if folded in _YES:
        return True
    if folded in _NO:
        return False
    raise ValueError(f"not да/нет: {text!r}")


def parse_text(text: str, *, today: date) -> ParsedFile:
    """Parse the file's text into valid rows and rejected rows (line numbers as in the file).

    :raises ImportFileError: the header lacks a name or phone column.
    """
    return _Parser(text, today=today).parse()


class _Parser:
    def __init__(self, text: str, *, today: date) -> None:
        self._text = text
        self._today = today
        self._phone_lines: dict[str, int] = {}
        self._normalize = FastPhoneNormalizer()

    def parse(self) -> ParsedFile:
        header_line = self._text.split("\n", 1)[0]
        reader = csv.reader(io.StringIO(self._text), delimiter=sniff_delimiter(header_line))
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError("the file is empty") from None
        columns = _map_columns(header)
        rows: list[PatientRow] = []
        rejected: list[RejectedRow] = []
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            values = {
                name: cells[index].strip() if index < len(cells) else ""
                for name, index in columns.items()
            }
            try:
                rows.append(self._row(line, values))
            except ValueError as exc:
                rejected.append(RejectedRow(line=line, reason=str(exc)))
        return ParsedFile(rows=tuple(rows), rejected=tuple(rejected))

    def _row(self, line: int, values: dict[str, str]) -> PatientRow:
        full_name = " ".join(values["full_name"].split())
        if not full_name:
            raise ValueError("missing name")
        phones = self._phones(values["phones"])
        birth_date = self._date(values, "birth_date")
        if birth_date is not None and birth_date > self._today:
            raise ValueError(f"bad date in birth_date: {values['birth_date']!r} is in the future")
        row = PatientRow(
            line=line,
            full_name=full_name,
            phones=phones,
            birth_date=birth_date,
            doctor=values.get("doctor") or None,
            insurance_company=values.get("insurance_company") or None,
            policy_end=self._date(values, "policy_end"),
            pd_consent=self._flag(values, "pd_consent"),
            marketing_consent=self._flag(values, "marketing_consent"),
            last_visit_date=self._date(values, "last_visit_date"),
            last_visit_doctor=values.get("last_visit_doctor") or None,
            last_visit_service=values.get("last_visit_service") or None,
        )
        # Only a row that is otherwise good claims its numbers: a rejected row must not make
        # the next, good row with the same number look like a duplicate.
        for phone in phones:
            earlier = self._phone_lines.get(phone)
            if earlier is not None:
                raise ValueError(f"duplicate within the file: {phone} already on line {earlier}")
        for phone in phones:
            self._phone_lines[phone] = line
        return row

    def _phones(self, cell: str) -> tuple[str, ...]:
        parts = [part.strip() for part in _PHONE_SEPARATORS.split(cell) if part.strip()]
        if not parts:
            raise ValueError("missing phone")
        phones: list[str] = []
        for part in parts:
            phone = self._normalize(part)
            if phone is None:
                raise ValueError(f"bad phone: {part!r}")
            if phone not in phones:
                phones.append(phone)
        return tuple(phones)

    @staticmethod
    def _date(values: dict[str, str], name: str) -> date | None:
        text = values.get(name, "")
        if not text:
            return None
        try:
            return parse_date(text)
        except ValueError as exc:
            raise ValueError(f"bad date in {name}: {text!r}") from exc

    @staticmethod
    def _flag(values: dict[str, str], name: str) -> bool | None:
        try:
            return parse_flag(values.get(name, ""))
        except ValueError as exc:
            raise ValueError(f"bad value in {name}: {values[name]!r}") from exc


def _map_columns(header: Sequence[str]) -> dict[str, int]:
    lookup = {alias: name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}
    lookup.update({fold_header(name): name for name in COLUMN_ALIASES})
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        name = lookup.get(fold_header(cell))
        if name is not None and name not in columns:
            columns[name] = index
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportFileError(
            f"no {' or '.join(missing)} column in the header {list(header)!r} "
            "(see docs/import-patients.md)"
        )
    return columns


def _batches(rows: Sequence[PatientRow]) -> Iterator[Sequence[PatientRow]]:
    for start in range(0, len(rows), _ROWS_PER_BATCH):
        yield rows[start : start + _ROWS_PER_BATCH]


class _Progress:
    """Progress lines on a terminal; nothing when stderr is a file or a pipe."""

    def __init__(self, err: TextIO, *, total: int) -> None:
        self._err = err
        self._total = total
        self._on = _isatty(err) and total >= PROGRESS_MIN_ROWS

    def show(self, done: int) -> None:
        if self._on:
            self._err.write(f"\rimport-patients: {done}/{self._total} rows")
            self._err.flush()

    def finish(self) -> None:
        if self._on:
            self._err.write("\n")
            self._err.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run_import_command(path: str, *, database_url: str, out: TextIO, err: TextIO) -> int:
    """Import the CSV file into the database; report imported, updated and rejected rows.

    Returns 0 when every row was imported or matched, 1 when some rows were rejected (the good
    ones are imported all the same), 2 when the file could not be imported at all.
    """
    # Imported here: the parsing above stays usable without a database.
    from callcenter.store.db import create_db_engine, create_session_factory, upgrade
    from callcenter.store.patients import import_patient_rows

    now = datetime.now(UTC)
    try:
        parsed = parse_text(decode(Path(path).read_bytes()), today=now.date())
    except OSError as exc:
        err.write(f"import-patients: cannot read {path}: {exc}\n")
        return 2
    except (ImportFileError, csv.Error) as exc:
        err.write(f"import-patients: {path}: {exc}\n")
        return 2

    upgrade(database_url)
    engine = create_db_engine(database_url)
    started = time.perf_counter()
    progress = _Progress(err, total=len(parsed.rows))
    results: list[RowResult] = []
    try:
        with create_session_factory(engine).begin() as session:
            done = 0
            for batch in _batches(parsed.rows):
                results.extend(import_patient_rows(session, rows=batch, at=now).rows)
                done += len(batch)
                progress.show(done)
    finally:
        progress.finish()
        engine.dispose()

    rejected = sorted(
        [(r.line, r.reason) for r in parsed.rejected]
        + [(r.line, r.reason or "") for r in results if r.outcome == "rejected"]
    )
    counts = {
        outcome: sum(1 for r in results if r.outcome == outcome)
        for outcome in ("imported", "updated", "unchanged")
    }
    out.write(
        f"imported: {counts['imported']}\nupdated: {counts['updated']}\n"
        f"unchanged: {counts['unchanged']}\nrejected: {len(rejected)}\n"
    )
    for line, reason in rejected:
        out.write(f"  line {line}: {reason}\n")
    elapsed = time.perf_counter() - started
    if _isatty(err):
        err.write(f"import-patients: {len(results)} rows written in {elapsed:.1f} s\n")
    return 1 if rejected else 0
