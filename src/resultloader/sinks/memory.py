"""MemorySink: rows in a dict, transactional like a database; for tests and users' tests."""

from __future__ import annotations

from typing import Any

from .._model import CommitResult, LoadInfo, LoadReport, Reject, RowBatch
from ..parse._rows import to_python as decode
from . import SinkCapabilities


class MemorySink:
    """Keeps committed rows in `rows` (id -> row dict with decoded JSON) and `rejects`."""

    capabilities = SinkCapabilities(keeps_rejects=True)

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.rejects: list[Reject] = []
        self.loads: list[LoadInfo] = []
        self._pending: dict[str, dict[str, Any]] = {}
        self._pending_rejects: list[Reject] = []
        self._written = 0

    def begin(self, info: LoadInfo) -> None:
        self._pending, self._pending_rejects, self._written = {}, [], 0
        self.loads.append(info)

    def write(self, batch: RowBatch) -> None:
        for row_id, output, metadata, url, extra in batch.rows():
            self._pending[row_id] = {
                "id": row_id,
                "output": None if output is None else decode(output),
                "metadata": decode(metadata),
                "url": url,
                "extra": None if extra is None else decode(extra),
            }
        self._written += len(batch)
        self._pending_rejects.extend(batch.rejects)

    def commit(self, report: LoadReport | None = None) -> CommitResult:
        unchanged = sum(1 for k, v in self._pending.items() if self.rows.get(k) == v)
        self.rows.update(self._pending)
        self.rejects.extend(self._pending_rejects)
        result = CommitResult(
            upserted=len(self._pending) - unchanged,
            unchanged=unchanged,
            duplicates=self._written - len(self._pending),
        )
        self._pending = {}
        return result

    def abort(self, error: str | None = None) -> None:
        self._pending, self._pending_rejects = {}, []
