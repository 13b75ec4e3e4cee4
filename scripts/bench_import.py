"""Benchmark import-patients: generate a CSV of N patients, import it into SQLite, print rows/s.

    .venv/bin/python scripts/bench_import.py [--rows 100000] [--encoding cp1251]

Imports twice: the first run inserts every row, the second (the same file) must change nothing.
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
from pathlib import Path

from callcenter.patients.importer import run_import_command

SURNAMES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Орлов"]
NAMES = ["Алексей", "Мария", "Сергей", "Анна", "Дмитрий", "Елена", "Ольга", "Павел"]


def write_file(path: Path, *, rows: int, encoding: str, seed: int = 7) -> None:
    """Write a clinic export of ``rows`` patients, every tenth with a second number."""
    rng = random.Random(seed)
    lines = [
        "ФИО;Телефоны;Дата рождения;Врач;Страховая компания;Полис до;Согласие ПД;"
        "Согласие на рекламу;Последний визит;Врач визита;Услуга"
    ]
    for i in range(rows):
        phones = f"8916{i:07d}"
        if i % 10 == 0:
            phones += f", +7926{i:07d}"
        insured = i % 5 == 0
        lines.append(
            ";".join(
                [
                    f"{rng.choice(SURNAMES)} {rng.choice(NAMES)}",
                    phones,
                    f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(1940, 2015)}",
                    "Смирнов А. В.",
                    "АльфаСтрахование" if insured else "",
                    "31.12.2027" if insured else "",
                    "да",
                    rng.choice(["да", "нет", ""]),
                    f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}",
                    "Смирнов А. В.",
                    "Консультация",
                ]
            )
        )
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--encoding", default="cp1251")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "patients.csv"
        write_file(csv_path, rows=args.rows, encoding=args.encoding)
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        for label in ("first import", "re-import"):
            out = io.StringIO()
            started = time.perf_counter()
            code = run_import_command(str(csv_path), database_url=url, out=out, err=io.StringIO())
            elapsed = time.perf_counter() - started
            summary = ", ".join(out.getvalue().splitlines()[:4])
            print(
                f"{label}: {args.rows} rows in {elapsed:.2f} s = {args.rows / elapsed:,.0f} rows/s "
                f"(exit {code}; {summary})"
            )


if __name__ == "__main__":
    main()
