"""Reading ahead: a source's batches produced in a thread, so that reading and decompressing
overlap with the sink's work on the batch before."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


def prefetch(
    items: Iterator[T], depth: int = 1, finished: threading.Event | None = None
) -> Generator[T, None, None]:
    """Produce `items` in a thread, so reading and decompressing overlap with loading.

    An exception in the thread is raised here. `finished` is set when the thread has ended.
    """
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        """Wait for room, unless the consumer has stopped listening."""
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:
            put(exc)
        finally:
            if finished is not None:
                finished.set()

    thread = threading.Thread(target=produce, name="resultloader-read", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # a short wait: a thread still blocked in a read ends at its read timeout by itself
        thread.join(timeout=1)
