"""The Apache Iceberg sink: `iceberg:CATALOG/NAMESPACE.TABLE`, with the extra
`resultloader[iceberg]` (pyiceberg, its SQL catalog on SQLite and pyarrow). CATALOG is a
pyiceberg catalog, configured the pyiceberg way (`.pyiceberg.yaml`, or the variables
`PYICEBERG_CATALOG__<NAME>__URI`, `..._WAREHOUSE`, ...). The sink (sink.py) is imported when a
target names it: pyiceberg is needed only then."""

from ..registry import SinkKind, register

KIND = register(
    SinkKind(
        ("iceberg",),
        f"{__name__}.sink:IcebergSink",
        "iceberg:CATALOG/NAMESPACE.TABLE",
        install="resultloader[iceberg]",
        package="pyiceberg",
    )
)
