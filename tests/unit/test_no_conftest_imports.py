"""No test module imports from a conftest: pytest loads conftest files itself, and a second
import path (``tests.unit.conftest`` beside pytest's ``conftest``) makes two copies of them.
What the tests share that is not a fixture lives in tests/helpers/."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def conftest_imports(tree: ast.AST) -> list[str]:
    """The modules named ``conftest`` (at any depth, relative or not) that ``tree`` imports from."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if "conftest" in name.replace(".", " ").split()]
    return found


def test_no_test_file_imports_from_a_conftest() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 10, f"found too few test files under {TESTS}"
    offending = {
        str(path.relative_to(TESTS)): hits
        for path in files
        if (hits := conftest_imports(ast.parse(path.read_text(), filename=str(path))))
    }
    assert not offending, f"import these from tests/helpers/ instead: {offending}"


def test_the_check_sees_every_form_of_conftest_import() -> None:
    for source in (
        "from tests.unit.conftest import make_record",
        "from .conftest import TABLE",
        "from . import conftest",
        "from tests.scenarios import conftest as scenarios",
        "import tests.hooks.conftest",
        "import conftest",
    ):
        assert conftest_imports(ast.parse(source)), source
    assert not conftest_imports(ast.parse("from tests.helpers.records import make_record\nimport conftesting"))
