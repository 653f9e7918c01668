"""Run a function on N local gloo ranks (spawned processes), as Ray Train's workers would: no cluster needed."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, world: int, port: int, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
    finally:
        if world > 1:
            dist.destroy_process_group()


def run_ranks(fn: Callable[..., None], world: int, *args: Any, timeout_s: float = 300, exit_code: int = 0) -> None:
    """fn(rank, world, *args) on `world` processes joined in a gloo group (none for world 1); fails unless every
    process exits with `exit_code` (-9: each was SIGKILLed). `fn` must be importable (module level): the processes
    are spawned."""
    port = _free_port()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_entry, args=(r, world, port, fn, args)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout_s)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert codes == [exit_code] * world, f"rank processes exited with {codes}"
