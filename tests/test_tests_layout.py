"""The suite's own layout: tests share helpers through tests/support/ and fixtures through
conftest.py files, never by importing another test module; every folder of tests is a package,
so two test files of the same name in different folders do not clash."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def python_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if ".cache" not in p.relative_to(TESTS).parts)


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports, relative imports resolved against its package."""
    package = ".".join(("tests", *path.parent.relative_to(TESTS).parts))
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # `from tests import test_x` names the module in its `names`
            found += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return found


def is_test_module(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module.startswith("tests.") and (last.startswith("test_") or last == "conftest")


def test_no_file_of_the_suite_imports_a_test_module_or_a_conftest():
    offenders = {
        f"{path.relative_to(TESTS)} imports {module}"
        for path in python_files()
        for module in imported_modules(path)
        if is_test_module(module)
    }
    assert sorted(offenders) == []


def test_every_folder_of_tests_is_a_package():
    folders = {p.parent for p in TESTS.rglob("test_*.py")} | {TESTS / "support"}
    assert (
        sorted(str(f.relative_to(TESTS)) for f in folders if not (f / "__init__.py").exists()) == []
    )
