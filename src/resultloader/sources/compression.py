"""A zstd reader that notices a truncated stream.

zstandard's `stream_reader` ends quietly when the input stops inside a frame, which would load a
part of the file as if it were all of it. This reader feeds small pieces to a decompression
object, so the output of one step stays bounded (a zstd bomb inflates up to ~32,000 times), and
raises EOFError, as gzip and bz2 do, when the input ends inside a frame.
"""

from __future__ import annotations

import io
from typing import IO, Any

import zstandard

_PIECE = 8192  # compressed bytes per step: bounds one step's output to ~256 MiB at worst


class _ZstdRaw(io.RawIOBase):
    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False  # input fed to the current frame that has not ended yet
        self._out = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pos >= len(self._out):
            if not self._step():
                return 0
        n = min(len(buffer), len(self._out) - self._pos)
        buffer[:n] = self._out[self._pos : self._pos + n]
        self._pos += n
        return n

    def _step(self) -> bool:
        """Decompress one piece; False at the end of the input."""
        data = self.source.read(_PIECE)
        if not data:
            if self._in_frame:
                raise EOFError("zstd stream ended inside a frame")
            return False
        out = []
        while data:
            self._in_frame = True
            out.append(self._obj.decompress(data))
            data = b""
            if self._obj.eof:  # a frame ended: what follows starts the next one
                data, self._in_frame = self._obj.unused_data, False
                self._obj = self._dctx.decompressobj()
        self._out, self._pos = b"".join(out), 0
        return True

    def close(self) -> None:
        self.source.close()
        super().close()


def zstd_reader(source: IO[bytes]) -> IO[bytes]:
    return io.BufferedReader(_ZstdRaw(source), 1 << 20)
