"""The Delta Lake sink: `delta:PATH` or `delta:s3://bucket/prefix`, with the extra
`resultloader[delta]` (the sink and the Parquet files it commits). The sink (sink.py) is
imported when a target names it: deltalake is needed only then."""

from ..registry import SinkKind, register

KIND = register(
    SinkKind(
        ("delta",),
        f"{__name__}.sink:DeltaSink",
        "delta:PATH (local or s3://)",
        install="resultloader[delta]",
        package="deltalake",
    )
)
