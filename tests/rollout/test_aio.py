"""The engine loop and the weight-version gate (pure asyncio: no engine, no sockets)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from limr.rollout.aio import EngineLoop, VersionGate


@pytest.fixture
def engine_loop():  # noqa: ANN201
    loop = EngineLoop("test-engine")
    yield loop
    loop.close()


def test_gate_update_waits_for_running_requests_and_blocks_new_ones(engine_loop: EngineLoop) -> None:
    gate = VersionGate()
    events: list[str] = []

    async def request(name: str, hold: float) -> None:
        await gate.acquire_read()
        events.append(f"{name} start")
        await asyncio.sleep(hold)
        events.append(f"{name} end")
        await gate.release_read()

    async def update() -> None:
        await gate.acquire_write()
        events.append("update start")
        await asyncio.sleep(0.05)
        events.append("update end")
        await gate.release_write()

    async def scenario() -> None:
        first = asyncio.create_task(request("r1", 0.1))
        await asyncio.sleep(0.01)
        writer = asyncio.create_task(update())
        await asyncio.sleep(0.01)
        late = asyncio.create_task(request("r2", 0.0))  # arrives while the update waits: runs after it
        await asyncio.gather(first, writer, late)

    engine_loop.run(scenario(), timeout=10)
    assert events == ["r1 start", "r1 end", "update start", "update end", "r2 start", "r2 end"]


def test_gate_write_timeout_leaves_it_usable(engine_loop: EngineLoop) -> None:
    gate = VersionGate()

    async def scenario() -> None:
        await gate.acquire_read()
        with pytest.raises(TimeoutError):
            await gate.acquire_write(timeout=0.05)
        await gate.acquire_read()  # a timed-out writer no longer holds readers back
        await gate.release_read()
        await gate.release_read()
        await gate.acquire_write(timeout=1)
        await gate.release_write()

    engine_loop.run(scenario(), timeout=10)


def test_stream_crosses_loops_and_closes_the_source_on_early_exit(engine_loop: EngineLoop) -> None:
    closed = threading.Event()
    ran_on: set[str] = set()

    async def source():  # noqa: ANN202
        try:
            for i in range(100):
                ran_on.add(threading.current_thread().name)
                yield i
                await asyncio.sleep(0)
        finally:
            closed.set()

    async def consume() -> list[int]:
        got = []
        async for x in engine_loop.stream(source()):
            got.append(x)
            if len(got) == 3:
                break
        return got

    assert asyncio.run(consume()) == [0, 1, 2]
    assert closed.wait(5), "the source generator must be closed on the engine loop"
    assert ran_on == {"test-engine"}


def test_stream_and_call_pass_errors_through(engine_loop: EngineLoop) -> None:
    async def failing():  # noqa: ANN202
        yield 1
        raise ValueError("boom")

    async def boom() -> None:
        raise KeyError("k")

    async def consume() -> list[int]:
        return [x async for x in engine_loop.stream(failing())]

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(consume())
    with pytest.raises(KeyError):
        asyncio.run(engine_loop.call(boom()))
    with pytest.raises(RuntimeError, match="deadlock"):

        async def nested() -> None:
            engine_loop.run(asyncio.sleep(0))

        engine_loop.run(nested())
