"""The application layer returns reports and raises typed errors: nothing in
``data/collectors`` prints, exits or decides an exit code (the edge, ``cli/``,
does), and the raw-archive path never travels inside notes."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APPLICATION = sorted((REPO / "data" / "collectors").rglob("*.py"))


def _calls_and_imports(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text())
    calls, imports = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            calls.add(func.id if isinstance(func, ast.Name) else
                      f"{getattr(func.value, 'id', '?')}.{func.attr}" if isinstance(func, ast.Attribute) else "?")
        elif isinstance(node, ast.ImportFrom) and node.module:
            imports.add(node.module)
            imports.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            imports.update(a.name for a in node.names)
    return calls, imports


def test_no_printing_exiting_or_exit_codes_in_the_application():
    assert APPLICATION
    for path in APPLICATION:
        calls, imports = _calls_and_imports(path)
        where = path.relative_to(REPO)
        assert not calls & {"print", "sys.exit", "exit", "os._exit"}, where
        assert not any(i == "core.exit_codes" or i.startswith("core.exit_codes.") for i in imports), where


def test_no_path_strings_in_notes():
    for path in APPLICATION:
        assert '"raw:' not in path.read_text() and "'raw:" not in path.read_text(), path.relative_to(REPO)
