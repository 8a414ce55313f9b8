"""Which sink a target names: `--into TARGET`, `history --into TARGET`, `load(source, TARGET)`.

A target is `SCHEME:LOCATION`, or a path: a DuckDB file, the default. Each kind of sink declares
the schemes it takes in its own module, with `register(SinkKind(...))`; the built-in ones:

- a path, or `duckdb:PATH`: DuckDB (`sinks/duckdb`);
- `postgresql://...` or `postgres://...`: PostgreSQL (`sinks/postgres`, `resultloader[postgres]`);
- `delta:PATH` or `delta:s3://bucket/prefix`: a Delta Lake table (`sinks/delta`, `[delta]`);
- `iceberg:CATALOG/NAMESPACE.TABLE`: an Apache Iceberg table (`sinks/iceberg`, `[iceberg]`).

They are found by importing their packages; a third-party package names its module in the
`resultloader.sinks` entry point group, read when a target's scheme is not a built-in one. A
sink given as "module:Class" is imported only when a target names it, so a missing optional
package is an error for that target alone, naming what to install.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from typing import Any

from .._errors import SinkError
from .._redact import display_name
from . import Sink

ENTRY_POINTS = "resultloader.sinks"
# packages of this one, each registering its kind
BUILTIN = ("duckdb", "postgres", "delta", "iceberg")
DEFAULT = "duckdb"  # the scheme of a target that has none: a path
# A scheme: two or more letters (one letter is a Windows drive), then a colon.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")


@dataclass(frozen=True)
class SinkKind:
    """A kind of sink that targets name by their scheme.

    `sink` is the class, or "module:Class" to import only when a target names it; the class
    makes a sink with `from_target(location, table)`, where `location` is what follows
    `SCHEME:` (the whole target where `keeps_scheme`, for a URL its driver reads). `package`
    is the package its module needs beyond resultloader's own, and `install` what brings it
    (`pip install 'resultloader[postgres]'`). `example` shows how its targets are written.
    """

    schemes: tuple[str, ...]
    sink: type[Any] | str
    example: str
    install: str | None = None
    package: str | None = None
    keeps_scheme: bool = False

    @property
    def class_name(self) -> str:
        return self.sink.__name__ if isinstance(self.sink, type) else self.sink.split(":")[-1]

    def load(self) -> type[Any]:
        """The sink class, imported now; a missing `package` names what to install."""
        if isinstance(self.sink, type):
            return self.sink
        module, _, name = self.sink.partition(":")
        try:
            found: type[Any] = getattr(importlib.import_module(module), name)
        except ModuleNotFoundError as exc:
            if not self.package or (exc.name or "").split(".")[0] != self.package:
                raise
            raise SinkError(
                f"this target needs the {self.package!r} package: pip install '{self.install}'"
            ) from None
        return found

    def open(self, location: str, table: str) -> Sink:
        sink: Sink = self.load().from_target(location, table)
        return sink


_REGISTRY: dict[str, SinkKind] = {}  # scheme, lower case -> its kind
_BROKEN: dict[str, str] = {}  # entry points that failed to load, by name, with the reason


def register(kind: SinkKind) -> SinkKind:
    """Make a kind of sink available by its schemes (a scheme registered first keeps its kind:
    a plug-in cannot take over a built-in one)."""
    for scheme in kind.schemes:
        _REGISTRY.setdefault(scheme.lower(), kind)
    return kind


def sink_for(target: str | os.PathLike[str], table: str = "results") -> Sink:
    """The sink `target` names, for `table` (a Delta target is the table itself)."""
    if isinstance(target, os.PathLike):
        return _default().open(os.fspath(target), table)
    found = _SCHEME.match(target)
    if found is None:
        return _default().open(target, table)
    scheme, rest = found[1].lower(), target[found.end() :]
    kind = kind_for(scheme)
    if kind is None:
        if not rest.startswith("//") and os.path.exists(target):
            return _default().open(target, table)  # a file whose name has a colon
        raise SinkError(_unknown(target, scheme))
    if not rest:
        raise SinkError(f"{target!r}: the target names no {scheme} location")
    return kind.open(target if kind.keeps_scheme else rest, table)


def kind_for(scheme: str) -> SinkKind | None:
    """The kind registered for `scheme`: the built-in ones, then the installed plug-ins'."""
    _load_builtin()
    if scheme.lower() not in _REGISTRY:
        _load_plugins()
    return _REGISTRY.get(scheme.lower())


def _default() -> SinkKind:
    kind = kind_for(DEFAULT)
    assert kind is not None, "the default sink registers itself"
    return kind


def builtin_class(name: str) -> type[Any] | None:
    """The built-in sink class called `name` (for `resultloader.PostgresSink`), imported now."""
    _load_builtin()
    for kind in _REGISTRY.values():
        if kind.class_name == name and _module(kind).startswith(f"{__package__}."):
            return kind.load()
    return None


def _module(kind: SinkKind) -> str:
    return kind.sink.__module__ if isinstance(kind.sink, type) else kind.sink.split(":")[0]


def _load_builtin() -> None:
    for package in BUILTIN:  # importing a sink's package registers its kind
        importlib.import_module(f"{__package__}.{package}")


def _load_plugins() -> None:
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINTS):
        if point.name in _BROKEN:
            continue
        try:
            found = point.load()  # importing the module registers its kind
        except Exception as exc:  # a broken plug-in must not break the other targets
            _BROKEN[point.name] = f"{point.value}: {type(exc).__name__}: {exc}"
            continue
        if isinstance(found, SinkKind):
            register(found)


def _unknown(target: str, scheme: str) -> str:
    kinds = dict.fromkeys(kind.example for kind in _REGISTRY.values())
    text = f"unknown target {display_name(target)!r}: no sink takes {scheme}: targets; use "
    text += ", ".join(kinds)
    if not target[len(scheme) + 1 :].startswith("//"):
        text += f" (a DuckDB file whose name has a colon: ./{display_name(target)})"
    broken = [f"{name} ({reason})" for name, reason in sorted(_BROKEN.items())]
    return text + (f"; plug-ins that failed to load: {', '.join(broken)}" if broken else "")
