"""The instance side installs on its own (``pip install ./rms_hooks``, rms_hooks/pyproject.toml)
with boto3 and nothing else: its distribution asks for boto3 only, and no module of it imports
anything but the standard library, boto3/botocore and rms_hooks itself. Offline: this reads the
files, it builds and installs nothing."""

from __future__ import annotations

import ast
import importlib
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "rms_hooks"
ALLOWED = {"boto3", "botocore", "rms_hooks"}


def _pyproject(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        return tomllib.load(file)


def _modules() -> Iterator[Path]:
    """The package's modules: what setuptools puts in the wheel (build/ is pip's leftover)."""
    for path in sorted(HOOKS.rglob("*.py")):
        if "build" not in path.relative_to(HOOKS).parts:
            yield path


def _imported(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports, at module level or in a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("rms_hooks" if node.level else (node.module or "").split(".")[0])
    return found


def test_the_hooks_distribution_depends_on_boto3_only():
    project = _pyproject(HOOKS / "pyproject.toml")["project"]
    names = [re.split(r"[\s\[<>=!~;@]", requirement, maxsplit=1)[0] for requirement in project["dependencies"]]
    assert names == ["boto3"]
    assert "optional-dependencies" not in project


@pytest.mark.parametrize("module", list(_modules()), ids=lambda p: p.name)
def test_a_hook_module_imports_only_the_standard_library_and_boto3(module: Path):
    outside = {name for name in _imported(module) if name not in sys.stdlib_module_names} - ALLOWED
    assert not outside, f"{module.relative_to(ROOT)} imports {sorted(outside)}: not installed by swr-rms-hooks"


def test_the_hooks_distribution_holds_the_package_its_scripts_and_its_units():
    hooks = _pyproject(HOOKS / "pyproject.toml")
    setuptools = hooks["tool"]["setuptools"]
    assert setuptools["packages"] == ["rms_hooks"]
    assert setuptools["package-dir"] == {"rms_hooks": "."}
    # One package, flat: a subpackage would be left out of the wheel by the list above.
    assert not [p for p in _modules() if p.name == "__init__.py" and p.parent != HOOKS]
    # The units swr-install-hooks installs (through importlib.resources) are package data.
    units = sorted(p.name for p in (HOOKS / "systemd").iterdir())
    patterns = setuptools["package-data"]["rms_hooks"]
    assert units and all(any((HOOKS / "systemd" / u).match(f"rms_hooks/{p}") for p in patterns) for u in units)
    # The same commands as the root distribution's, each a function that exists.
    root_scripts = _pyproject(ROOT / "pyproject.toml")["project"]["scripts"]
    wanted = {name: target for name, target in root_scripts.items() if target.startswith("rms_hooks.")}
    assert hooks["project"]["scripts"] == wanted
    assert set(wanted) == {"swr-boot-gate", "swr-notify-fault", "swr-heartbeat", "swr-install-hooks"}
    for target in wanted.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_the_root_distribution_still_contains_the_hooks():
    setuptools = _pyproject(ROOT / "pyproject.toml")["tool"]["setuptools"]
    assert "rms_hooks*" in setuptools["packages"]["find"]["include"]
    assert setuptools["package-data"]["rms_hooks"] == ["systemd/*"]
