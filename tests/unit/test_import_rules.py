"""Dependencies point inward: the pure packages import no I/O layer (STYLE.md, layout)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "callcenter"


def runtime_imports(path: Path) -> set[str]:
    """Return the modules a file imports at run time (``if TYPE_CHECKING:`` blocks skipped)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def files(*parts: str) -> list[Path]:
    target = PKG.joinpath(*parts)
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


PURE = [
    *files("calls"),
    *files("playbook"),
    *files("tasks", "rules.py"),
    *files("patients", "phone.py"),
    *files("ami", "events.py"),
    *files("ami", "parser.py"),
    *files("ami", "actions.py"),
]
IO_LAYERS = ("callcenter.ami.client", "callcenter.ami.protocol", "callcenter.store", "web")
IO_LIBRARIES = ("panoramisk", "sqlalchemy", "alembic", "flask", "flask_socketio", "psycopg")


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(PKG)))
def test_pure_modules_import_no_io_layer(path):
    bad = {
        m for m in runtime_imports(path) if m.startswith(IO_LAYERS) or m.startswith(IO_LIBRARIES)
    }
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_only_the_ami_package_imports_panoramisk():
    offenders = [
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if p.parent.name != "ami" and any(m.startswith("panoramisk") for m in runtime_imports(p))
    ]
    assert offenders == []


def test_only_the_store_package_imports_sqlalchemy():
    offenders = [
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if "store" not in p.relative_to(PKG).parts
        and any(m.startswith(("sqlalchemy", "alembic")) for m in runtime_imports(p))
    ]
    assert offenders == []


def test_the_package_never_imports_the_web_layer_except_the_composition_root():
    """web → callcenter, never the reverse; runtime.py wires the processes that serve pages."""
    offenders = [
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if p.name != "runtime.py"
        and any(m == "web" or m.startswith("web.") for m in runtime_imports(p))
    ]
    assert offenders == []
