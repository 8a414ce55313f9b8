"""The test environment is reproducible: CI runs the README's test command, which installs from
constraints.txt (every package pinned), and constraints-lowest.txt pins each of the library's
own dependencies at the lower bound pyproject declares."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
BOUND = re.compile(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([0-9.]+)"')


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(file: str) -> dict[str, str]:
    """name -> version of every pin; any other line than a pin or a comment fails."""
    found = {}
    for line in (REPO / file).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.fullmatch(line.strip())
        assert match, f"{file}: not a pin: {line!r}"
        found[_name(match[1])] = match[2]
    return found


def declared_bounds(*extras: str) -> dict[str, str]:
    """The lower bounds of [project] dependencies and of the given extras, from pyproject."""
    text = (REPO / "pyproject.toml").read_text()
    blocks = [re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M)]
    blocks += [re.search(rf"^{extra} = \[(.*?)\]$", text, re.M | re.S) for extra in extras]
    assert all(blocks), "pyproject.toml: a dependency list was not found"
    return {_name(n): v for block in blocks for n, v in BOUND.findall(block[1])}  # type: ignore[index]


def release(version: str) -> tuple[int, ...]:
    """3.2.0.post0 -> (3, 2, 0): a post-release re-issues the release it names."""
    parts = [int(p) for p in version.split(".post")[0].split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def test_ci_runs_the_readmes_test_command_which_installs_from_the_constraints():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = 'pip install -c constraints.txt -e ".[test]" && pytest -q'
    assert command in readme
    [line] = [line for line in ci.splitlines() if command in line]
    assert f"\n{line}\n" in readme  # the same whole command, venv and all


def test_constraints_pin_the_whole_test_environment_but_resultloader():
    pinned = pins("constraints.txt")
    assert "resultloader" not in pinned
    wanted = declared_bounds("postgres", "delta", "iceberg", "dask", "test")
    assert set(wanted) - set(pinned) == set()
    assert len(pinned) > 2 * len(wanted)  # their dependencies too, not only the direct ones
    for name, bound in wanted.items():
        assert release(pinned[name]) >= release(bound), name


def test_constraints_lowest_pin_each_dependency_at_its_declared_lower_bound():
    lowest = pins("constraints-lowest.txt")
    for name, bound in declared_bounds("postgres", "delta", "iceberg", "dask").items():
        assert name in lowest, f"constraints-lowest.txt does not pin {name}"
        assert release(lowest[name]) == release(bound), (name, lowest[name], bound)
