"""The package's layout shows the flow: imports run one way, and no two modules need each other.

cli -> pipeline -> providers, sources, sinks -> parse -> the shared root modules. `testing` sits
beside the command line (it drives whole loads); nothing in the package imports it. So do the
schedulers' integrations (`airflow`, `dagster`, and `_scheduled`, what they share): they drive
pipelines, as the command line does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import resultloader

PACKAGE = Path(resultloader.__file__).parent
LAYERS = {
    "": 0,  # the root modules: errors, the row model, HTTP, URLs, redaction, memory
    "parse": 1,
    "providers": 2,
    "sources": 2,
    "sinks": 2,
    "pipeline": 3,
    "cli": 4,
    "testing": 4,
    "airflow": 4,
    "dagster": 4,
    "_scheduled": 4,
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["resultloader", *parts])


def _imports(path: Path) -> set[str]:
    """Every module of the package that `path` imports, at the top, in a function or under
    `if TYPE_CHECKING:` alike: a deferred import is still a dependency."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            name = f"{base}.{node.module}" if node.level and node.module else base or node.module
            targets = [name] + [f"{name}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t and t.startswith("resultloader") and _exists(t)}
    return found - {module}


def _exists(module: str) -> bool:
    path = PACKAGE.joinpath(*module.split(".")[1:])
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[1:] in ([], ["__main__"]):
        return None  # the front doors import from everywhere
    return LAYERS[_stage(module)]


def _stage(module: str) -> str:
    """The stage folder a module sits in ("" for the root modules)."""
    name = module.split(".")[1:2]
    return name[0] if name and name[0] in LAYERS else ""


def test_imports_run_one_way():
    upward = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _layer(module) is not None
        and (_layer(target) is None or _layer(target) > _layer(module))  # type: ignore[operator]
    ]
    assert upward == []


def test_no_stage_imports_a_sibling_stage():
    across = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if _layer(module) == _layer(target) == 2 and _stage(module) != _stage(target)
    ]
    assert across == []


def test_no_import_cycle_deferred_or_not():
    graph = _graph()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str], done: set[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target], done)
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module], done)
    assert cycles == []


def test_the_command_line_runs_as_a_module():
    import subprocess
    import sys

    shown = subprocess.run(
        [sys.executable, "-m", "resultloader", "--help"], capture_output=True, text=True
    )
    assert shown.returncode == 0
    assert {"load", "ingest", "history"} <= set(shown.stdout.split())
