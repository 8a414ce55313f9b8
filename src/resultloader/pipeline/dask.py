"""Parts made on a Dask cluster: each worker reads and parses a source by the ordinary pipeline
into a DuckDB file of its own, then writes its rows (and rejects) as Parquet into the parts
directory, a directory every machine sees or an s3:// prefix. The driver merges the parts in
order, as for parts made in threads (load_many.py), and removes the parts at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import duckdb

from .._errors import ResultLoaderError
from .._model import LoadOptions
from ..sources.download import HttpPolicy
from ..sources.expand import Source
from .part_files import put, remove
from .parts import Part, Staged, rejects_path, stage_part

_PART_ROWS = """SELECT id, output::VARCHAR AS output, metadata::VARCHAR AS metadata, url,
    extra::VARCHAR AS extra FROM part"""


def _client(engine: str, workers: int) -> tuple[Any, Any]:
    """A client of a new local cluster (`dask`) or of the scheduler `dask://HOST:PORT`."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ResultLoaderError(
            "the Dask engine needs the dask extra: pip install 'resultloader[dask]'"
        ) from None
    if engine == "dask":
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,  # a failed task: our one-line error, no traceback
        )
        return Client(cluster), cluster  # type: ignore[no-untyped-call]
    if engine.startswith("dask://") and len(engine) > len("dask://"):
        address = "tcp://" + engine.removeprefix("dask://")
        return Client(address, timeout=30), None  # type: ignore[no-untyped-call]
    raise ValueError(
        f"engine must be None, 'threads', 'dask' or 'dask://HOST:PORT', not {engine!r}"
    )


@contextlib.contextmanager
def dask_parts(
    sources: list[Source],
    options: LoadOptions,
    http: HttpPolicy | None,
    workers: int,
    engine: str,
    parts_dir: str | None,
) -> Iterator[Iterator[tuple[Source, Staged]]]:
    """Every source submitted at once (the scheduler spreads them); the futures in order."""
    client, cluster = _client(engine, workers)
    made_here = parts_dir is None
    parts_dir = parts_dir or tempfile.mkdtemp(prefix="resultloader-parts-")
    run = f"{parts_dir.rstrip('/')}/resultloader-{uuid.uuid4().hex[:12]}"
    futures: list[Any] = []
    try:
        futures = [
            client.submit(parquet_part, source, options, http, run, i, workers, pure=False)
            for i, source in enumerate(sources)
        ]
        yield iter(zip(sources, futures, strict=True))
    finally:
        client.cancel(futures)
        client.close()
        if cluster is not None:
            cluster.close()
        remove(run)
        if made_here:
            shutil.rmtree(parts_dir, ignore_errors=True)


def parquet_part(
    source: Source,
    options: LoadOptions,
    http: HttpPolicy | None,
    run: str,
    index: int,
    workers: int = 1,
) -> Part:
    """On a worker: the source as Parquet parts under `run`, with its share of the budget as
    one of `workers` (a local cluster's workers share this machine's cores and memory). Errors
    come back as one-line ResultLoaderErrors naming the source (any exception class would not
    unpickle here)."""
    local = tempfile.mkdtemp(prefix="resultloader-part-")
    try:
        part = stage_part(source, options, http, local, index, workers)
        name = f"part-{index:06d}.parquet"
        files = [(_PART_ROWS, name)]
        if options.on_error == "quarantine":
            files.append(("SELECT * FROM part_rejects", rejects_path(name)))
        con = duckdb.connect(part.path, read_only=True)
        try:
            for query, file in files:
                con.execute(f"COPY ({query}) TO '{os.path.join(local, file)}' (FORMAT parquet)")
        finally:
            con.close()
        for _, file in files:
            put(os.path.join(local, file), f"{run}/{file}")
        return Part(source, f"{run}/{name}", part.report, parquet=True)
    except ResultLoaderError as exc:
        raise ResultLoaderError(" ".join(str(exc).split())) from None
    except Exception as exc:
        raise ResultLoaderError(f"{source.shown}: {type(exc).__name__}: {exc}") from None
    finally:
        shutil.rmtree(local, ignore_errors=True)
