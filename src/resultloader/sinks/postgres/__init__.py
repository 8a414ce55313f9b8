"""PostgreSQL: `postgresql://USER[:PASSWORD]@HOST:PORT/DB` (or `postgres://`), with the extra
`resultloader[postgres]`. The sink (sink.py) is imported when a target names it: psycopg is
needed only then."""

from ..registry import SinkKind, register

KIND = register(
    SinkKind(
        ("postgresql", "postgres"),
        f"{__name__}.sink:PostgresSink",
        "postgresql://USER@HOST:PORT/DB",
        install="resultloader[postgres]",
        package="psycopg",
        keeps_scheme=True,
    )
)
