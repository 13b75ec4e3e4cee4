"""import-patients: CSV in UTF-8 or cp1251, `;` or `,`; bad rows rejected with a reason, good rows
kept; patients matched by phone, so re-importing the same file changes nothing."""

from __future__ import annotations

import io
import random
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.patients import importer
from callcenter.patients.importer import (
    FastPhoneNormalizer,
    ImportFileError,
    decode,
    parse_text,
    run_import_command,
)
from callcenter.patients.phone import normalize_phone
from callcenter.store.models_patients import ConsentRecord, Patient, PatientPhone, Visit
from callcenter.store.patients import (
    consent_state_for_phone,
    find_patient_id,
    import_patient_rows,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "patients"
CP1251_FILE = FIXTURES / "clinic_cp1251_semicolon.csv"
UTF8_FILE = FIXTURES / "clinic_utf8_comma.csv"
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def run(path: Path, db_url: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_import_command(str(path), database_url=db_url, out=out, err=err)
    return code, out.getvalue()


def table_counts(session: Session) -> dict[str, int]:
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Patient, PatientPhone, ConsentRecord, Visit)
    }


# --- parsing (pure) ------------------------------------------------------------------------


def test_cp1251_semicolon_file_is_detected_and_bad_rows_get_line_and_reason() -> None:
    """Rule: CSV in cp1251 with `;`; rejected rows carry the line number and the reason
    (bad phone, bad date, duplicate within the file, missing name)."""
    parsed = parse_text(decode(CP1251_FILE.read_bytes()), today=TODAY)
    assert [row.line for row in parsed.rows] == [2, 3, 8]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (4, "bad phone: '12345'"),
        (5, "bad date in birth_date: '31.02.1990'"),
        (6, "duplicate within the file: +79039556279 already on line 3"),
        (7, "missing name"),
    ]
    first = parsed.rows[0]
    assert first.full_name == "Иванова Мария Петровна"
    assert first.phones == ("+79161234567", "+79265550101")
    assert first.birth_date == date(1984, 3, 5)
    assert first.policy_end == date(2027, 12, 31)
    assert (first.pd_consent, first.marketing_consent) == (True, False)
    assert first.last_visit_date == date(2026, 4, 14)
    assert parsed.rows[2].full_name == "Ёлкина Ольга Юрьевна"


def test_utf8_comma_file_with_english_headers_and_iso_dates() -> None:
    """Rule: UTF-8 with `,`; phones several per cell; dates ISO or DD.MM.YYYY."""
    parsed = parse_text(decode(UTF8_FILE.read_bytes()), today=TODAY)
    assert parsed.rejected == ()
    assert parsed.rows[0].phones == ("+79160001001", "+79160001002")
    assert parsed.rows[0].birth_date == date(1990, 6, 15)
    assert parsed.rows[1].birth_date is None


def test_birth_date_in_the_future_is_a_bad_date() -> None:
    parsed = parse_text("ФИО;Телефон;Дата рождения\nИванов;89039556279;01.01.2030\n", today=TODAY)
    assert parsed.rejected[0].reason.startswith("bad date in birth_date")


def test_file_without_a_phone_column_is_refused_as_a_whole() -> None:
    with pytest.raises(ImportFileError, match="phones"):
        parse_text("ФИО;Врач\nИванов;Смирнов\n", today=TODAY)


def test_rejected_row_does_not_make_a_later_good_row_a_duplicate() -> None:
    """A row rejected for a bad date does not claim its number."""
    text = "ФИО;Телефон;Дата рождения\nА;89039556279;99.99.1990\nБ;89039556279;01.01.1990\n"
    parsed = parse_text(text, today=TODAY)
    assert [r.line for r in parsed.rows] == [3]


# --- the command against both databases ----------------------------------------------------


def test_good_rows_are_kept_when_bad_ones_are_rejected(
    db_url: str, session_factory: sessionmaker[Session]
) -> None:
    """Rule: good rows are kept when bad ones are rejected; the report says which and why."""
    code, report = run(CP1251_FILE, db_url)
    assert code == 1
    assert report.splitlines()[:4] == ["imported: 3", "updated: 0", "unchanged: 0", "rejected: 4"]
    assert "  line 4: bad phone: '12345'" in report
    assert "  line 7: missing name" in report
    with session_factory() as session:
        assert table_counts(session) == {
            "patients": 3,
            "patient_phones": 4,
            # Иванова: pd given (marketing "нет" needs no record); Петров: both; Ёлкина: pd.
            "consent_records": 4,
            "visits": 1,
        }
        ivanova = find_patient_id(session, phone="89265550101")
        assert ivanova == find_patient_id(session, phone="+79161234567")
        state = consent_state_for_phone(session, phone="+79039556279", at=datetime.now(UTC))
        assert state is not None and state.pd_consent and state.marketing_consent


def test_reimporting_the_same_file_changes_nothing(
    db_url: str, session_factory: sessionmaker[Session]
) -> None:
    """Rule: re-importing the same file changes nothing (idempotent: patients matched by phone)."""
    run(CP1251_FILE, db_url)
    with session_factory() as session:
        before = table_counts(session)
    code, report = run(CP1251_FILE, db_url)
    assert code == 1  # the same four bad rows are reported again
    assert report.splitlines()[:4] == ["imported: 0", "updated: 0", "unchanged: 3", "rejected: 4"]
    with session_factory() as session:
        assert table_counts(session) == before


def test_changed_row_updates_the_patient_matched_by_phone(
    session_factory: sessionmaker[Session],
) -> None:
    """Rule: match patients by phone; a changed cell updates, an empty one keeps the value."""
    first = "ФИО;Телефон;Врач;Согласие на рекламу\nПетров С.;89039556279;Кузнецова;да\n"
    second = "ФИО;Телефоны;Врач;Согласие на рекламу\nПетров С. И.;89039556279, 89051510563;;нет\n"
    with session_factory.begin() as session:
        import_patient_rows(session, rows=parse_text(first, today=TODAY).rows, at=NOW)
    later = NOW.replace(hour=10)
    with session_factory.begin() as session:
        result = import_patient_rows(session, rows=parse_text(second, today=TODAY).rows, at=later)
    assert [r.outcome for r in result.rows] == ["updated"]
    with session_factory() as session:
        patient = session.scalars(select(Patient)).one()
        assert (patient.full_name, patient.doctor) == ("Петров С. И.", "Кузнецова")
        assert find_patient_id(session, phone="89051510563") == patient.id
        state = consent_state_for_phone(session, phone="89051510563", at=later)
        assert state is not None and not state.marketing_consent


def test_row_whose_phones_belong_to_two_patients_is_rejected(
    session_factory: sessionmaker[Session],
) -> None:
    """A row cannot merge two stored patients: it is rejected with the reason."""
    two = "ФИО;Телефон\nА;89039556279\nБ;89051510563\n"
    both = "ФИО;Телефоны\nАБ;89039556279,89051510563\n"
    with session_factory.begin() as session:
        import_patient_rows(session, rows=parse_text(two, today=TODAY).rows, at=NOW)
    with session_factory.begin() as session:
        result = import_patient_rows(session, rows=parse_text(both, today=TODAY).rows, at=NOW)
    assert result.rows[0].outcome == "rejected"
    assert "different patients" in (result.rows[0].reason or "")


def test_unreadable_file_reports_and_returns_2(db_url: str, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run_import_command(str(tmp_path / "missing.csv"), database_url=db_url, out=out, err=err)
    assert code == 2
    assert "cannot read" in err.getvalue()


def test_fast_phone_normalizer_agrees_with_normalize_phone() -> None:
    """The import's memoized normalizer returns exactly what normalize_phone returns."""
    rng = random.Random(152)
    normalize = FastPhoneNormalizer()
    shapes = ["+7{}", "8{}", "7{}", "{}", "8 ({}) {}-{}-{}", "+7 {} {} {} {}", "(+7){}"]
    for _ in range(3000):
        digits = "".join(rng.choice("0123456789") for _ in range(10))
        shape = rng.choice(shapes)
        if shape.count("{}") == 4:
            raw = shape.format(digits[:3], digits[3:6], digits[6:8], digits[8:])
        else:
            raw = shape.format(digits)
        assert normalize(raw) == normalize_phone(raw), raw


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_shown_on_a_terminal_only(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: progress shown for big files (on stderr when a terminal)."""
    monkeypatch.setattr(importer, "PROGRESS_MIN_ROWS", 1)
    terminal, pipe = TerminalStream(), io.StringIO()
    run_import_command(str(CP1251_FILE), database_url=db_url, out=io.StringIO(), err=terminal)
    run_import_command(str(CP1251_FILE), database_url=db_url, out=io.StringIO(), err=pipe)
    assert "import-patients: 3/3 rows" in terminal.getvalue()
    assert pipe.getvalue() == ""
