"""The Delta Lake sink (the `delta` extra): the sink and the Parquet files it commits."""

from .sink import DeltaSink

__all__ = ["DeltaSink"]
