"""Map a function over keys in a thread pool, a bounded number ahead, yielding results in key order.

The scorer reads events objects this way (Arrow decoding and numpy release the GIL) and `limr score`
formats its JSONL chunks this way: work runs N-wide while the consumer sees one ordered stream, and at
most threads + 1 results are held at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

K = TypeVar("K")
T = TypeVar("T")


def ordered_map(fn: Callable[[K], T], keys: list[K], threads: int | None) -> Iterator[tuple[K, T]]:
    """fn over keys, up to `threads` in flight (and one ahead), results in key order."""
    threads = threads or min(4, os.cpu_count() or 1)
    if threads <= 1 or len(keys) <= 1:
        for key in keys:
            yield key, fn(key)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="limr-read") as pool:
        pending: list[tuple[K, Future[T]]] = []
        it = iter(keys)
        for key in it:
            pending.append((key, pool.submit(fn, key)))
            if len(pending) >= threads + 1:
                break
        while pending:
            key, fut = pending.pop(0)
            result = fut.result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(fn, nxt)))
            yield key, result
