"""The package as installed: typed, a console script, its runtime dependencies, a tidy API."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import re

import ijson

import resultloader


def test_the_package_ships_py_typed():
    assert (importlib.resources.files("resultloader") / "py.typed").is_file()


def test_the_console_script_points_at_the_cli():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    (script,) = [s for s in scripts if s.name == "resultloader"]
    assert script.value == "resultloader.cli:main"
    assert callable(script.load())


def test_runtime_dependencies_are_declared():
    requires = importlib.metadata.requires("resultloader") or []
    runtime = {
        re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower(): r
        for r in requires
        if "extra ==" not in r
    }
    for name in ("orjson", "ijson", "smart-open", "duckdb", "click", "rich", "zstandard"):
        assert name in {k.replace("_", "-") for k in runtime}, name
    smart_open = next(v for k, v in runtime.items() if k.replace("_", "-") == "smart-open")
    assert "http" in smart_open and "s3" in smart_open


def test_ijson_runs_on_its_c_backend():
    assert ijson.backend == "yajl2_c"


def test_the_public_api_is_sorted_and_importable():
    assert resultloader.__all__ == sorted(resultloader.__all__)
    for name in resultloader.__all__:
        assert getattr(resultloader, name) is not None
    assert resultloader.__version__ == importlib.metadata.version("resultloader")
