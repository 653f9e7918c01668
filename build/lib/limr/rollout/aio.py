"""The engine's event loop and its weight-version gate (asyncio only: no vLLM, Ray or torch imports).

vLLM's `AsyncLLM` is bound to the asyncio loop it was created on, while its callers are threads (the replica's
weight-transfer control loop, `limr eval`, benchmarks) and other loops (the Serve replica's HTTP loop). So the
engine lives on a loop of its own (`EngineLoop`): threads call into it with `run`, coroutines with `call`, and
async generators that live there (streamed responses) are consumed elsewhere with `stream`.

`VersionGate` keeps a request on one weight version: generation holds a shared lease for its whole duration,
a weight update holds the gate alone, and a waiting update keeps new leases out so updates are not starved.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


class EngineLoop:
    """An asyncio loop running on a daemon thread of its own."""

    def __init__(self, name: str = "vllm-engine") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and wait for its result (from any thread but the loop's own)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("EngineLoop.run called from the engine loop itself (it would deadlock)")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` run on the engine loop from another loop; cancelling the caller cancels it there too."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stream(self, agen: AsyncIterator[T]) -> AsyncIterator[T]:
        """Iterate `agen`, an async generator of the engine loop, from the calling loop.

        The generator is always closed on the engine loop (its `finally` blocks release leases there), also when
        the consumer stops early (a client disconnects).
        """
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for item in agen:
                    caller.call_soon_threadsafe(queue.put_nowait, item)
                caller.call_soon_threadsafe(queue.put_nowait, _END)
            except BaseException as e:  # handed to the consumer, which re-raises it
                caller.call_soon_threadsafe(queue.put_nowait, e)
                raise
            finally:
                await agen.aclose()  # type: ignore[attr-defined]

        future = asyncio.run_coroutine_threadsafe(pump(), self.loop)
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


class VersionGate:
    """A readers-writer gate on the engine loop: generation shares it, a weight update holds it alone.

    Writers take precedence: once an update waits, new generation waits behind it, so a steady stream of requests
    cannot postpone an update forever; requests already running finish on the old weights first.
    """

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    async def acquire_read(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1

    async def release_read(self) -> None:
        async with self._cond:
            self._readers -= 1
            self._cond.notify_all()

    async def acquire_write(self, timeout: float | None = None) -> None:
        """Wait until no generation runs and hold the gate; TimeoutError after `timeout` seconds."""
        async with self._cond:
            self._writers_waiting += 1
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: not self._writing and self._readers == 0), timeout)
                self._writing = True
            finally:
                self._writers_waiting -= 1
                self._cond.notify_all()

    async def release_write(self) -> None:
        async with self._cond:
            self._writing = False
            self._cond.notify_all()
