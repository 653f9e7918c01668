"""Helpers every `limr` command shares: user-facing errors (one line, an exit status that says whose fault it was),
atomic output files, the common options, and the output of results as a table for people or JSON for scripts.

Import-light on purpose (typer and rich only): `limr score` and `limr select` start without torch, Ray or vLLM.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

from limr.atomic import atomic_file

StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Store URI: a path, file://..., or s3://bucket/prefix [env LIMR_STORE]")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON (for scripts) instead of a table.")]


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's input errors into one `error: ...` line on stderr and exit status 2 (1 when the store
    could not be reached)."""
    from limr.algo.selection import SelectionError
    from limr.data.pool import PoolError
    from limr.events.correct import CorrectRuleError
    from limr.events.io import EventSchemaError
    from limr.events.writer import RunExists
    from limr.importers.base import DumpError
    from limr.scoring import EmptyRun, EventDataError, RunNotFound
    from limr.store import InvalidKey, ObjectNotFound, StoreError

    try:
        yield
    except (
        CliError,
        SelectionError,
        PoolError,
        EventSchemaError,
        DumpError,
        CorrectRuleError,
        RunExists,
        EventDataError,
        RunNotFound,
        EmptyRun,
        StoreError,
    ) as e:
        typer.echo(f"error: {e}", err=True)
        # 2: the input is at fault (file, field, argument); 1: the store could not be reached or refused us.
        transient = isinstance(e, StoreError) and not isinstance(e, ObjectNotFound | InvalidKey)
        raise typer.Exit(1 if transient else 2) from None


def write_atomic(path: str | Path, lines: Iterable[str]) -> int:
    """Write lines to `path` via a temp file in the same directory + rename; returns the line count."""
    n = 0
    with atomic_file(path, "w") as f:
        for line in lines:
            f.write(line)
            n += 1
    return n


def write_atomic_bytes(path: str | Path, chunks: Iterable[Any]) -> int:
    """`write_atomic` for bytes-like chunks (e.g. Arrow buffers, written without a copy); returns the size.

    A chunk is written in a thread while the next one is made: writing a 200 MB file takes as long as
    making it, and both release the GIL.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    n = 0
    with atomic_file(path, "wb") as f, ThreadPoolExecutor(1) as pool:
        pending: Future[int] | None = None
        for chunk in chunks:
            n += pending.result() if pending else 0
            pending = pool.submit(f.write, chunk)
        n += pending.result() if pending else 0
    return n


def print_result(value: Any, as_json: bool, table: Callable[[Any], RenderableType]) -> None:
    """JSON for scripts, else a table for people (as `kubectl get` / `gh` print them)."""
    if as_json:
        typer.echo(json.dumps(value, indent=2))
    else:
        Console(highlight=False).print(table(value))


def rows_table(rows: list[dict[str, Any]], columns: dict[str, str], title: str | None = None) -> Table:
    """A table of `rows` with `columns` {key: header}; numbers right-aligned, floats to 4 places, None as '-'."""
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    numeric = {k for k in columns if any(isinstance(r.get(k), int | float) for r in rows)}
    for key, header in columns.items():
        t.add_column(header, justify="right" if key in numeric else "left")
    for r in rows:
        t.add_row(*(cell(r.get(k)) for k in columns))
    return t


def cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def when(unix: float | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fields_table(pairs: list[tuple[str, Any]], title: str) -> Table:
    """A two-column table of one object's fields, no header."""
    t = Table(title=title, box=None, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    for k, v in pairs:
        t.add_row(k, cell(v))
    return t


def parse_sets(items: list[str] | None) -> dict[str, object]:
    """`--set key=value` pairs (values parsed as YAML: `3` is a number, `[a, b]` a list), for the dotted
    overrides of limr.learner.config.load_config."""
    import yaml

    out: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set {item!r}: expected key=value", param_hint="--set")
        out[key.strip()] = yaml.safe_load(value)
    return out
