"""A quiet terminal for long commands: one progress display and a few lines; all logging goes to a file.

Ray, Serve, Ray Train and vLLM log a great deal (a Serve line per request, Ray Train's controller warning
every second, vLLM's engine start-up), and Ray workers print through the driver. Inside `quiet_terminal`
everything that is written to file descriptors 1 and 2 of this process, by Python loggers, `warnings`,
`print`, Ray's driver-side echo of worker logs (log_to_driver) or C++ code, lands in one log file whose
path is printed first; the terminal shows only what the command says through the `Terminal` and one
`rich` progress display. `verbose=True` leaves the logs on the terminal (the `--verbose` flag).

    from limr.console import progress, quiet_terminal

    with quiet_terminal(out / "limr-demo.log", verbose=verbose) as term:   # prints "logs: out/limr-demo.log"
        term.echo("building the tiny model")                             # a line above the progress display
        with progress("SFT warm start", total=800) as bar:               # one line of the display
            for step in range(800):
                bar.advance(status=f"loss {loss:.3f}")
        term.echo(result_table)                                           # str or any rich renderable

`progress(...)` works with or without an active terminal (then it is a tqdm bar on stderr, or nothing when
`enabled=False`), so library code (the SFT loop, the learner) calls it unconditionally. Code that runs in
another process (a Ray Train worker) cannot reach this display; `limr.learner.launch` relays its steps.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Read by the processes this one starts (a local Ray cluster's workers inherit the driver's environment).
# Ray's and vLLM's loggers keep their levels (RAY_*, VLLM_LOGGING_LEVEL as the user set them): the file is the
# full record. Library progress bars (HF, vLLM, Ray's tqdm) would only fill it with carriage returns.
QUIET_ENV = {"TQDM_DISABLE": "1"}

_active: Terminal | None = None


class Bar(Protocol):
    """One line of progress: `advance` after each unit of work; `status` is a short text shown beside it."""

    def advance(self, n: float = 1, status: str | None = None) -> None: ...

    def update(self, completed: float | None = None, total: float | None = None, status: str | None = None) -> None:
        """Set absolute progress (e.g. relayed from another process) and/or the total once it is known."""
        ...


@dataclass
class Terminal:
    """What a command shows the user while `quiet_terminal` is active."""

    console: Console
    log_file: Path | None  # None when verbose: the logs stay on the terminal
    # Shown only while a task runs: a command without one prints no empty display, and the result printed after
    # the last task comes last on the screen, below the finished progress lines.
    _progress: Progress

    def echo(self, message: RenderableType = "") -> None:
        """A line (or table) for the user, above the progress display; also written to the log file."""
        self._progress.console.print(message)
        if self.log_file is not None and isinstance(message, str):
            logging.getLogger("limr.terminal").info("%s", message)

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Bar]:
        """A line of the progress display for the duration of the block (it stays, completed, after it)."""
        display = self._progress
        if not display.live.is_started:
            for done in list(display.tasks):  # already printed, finished, when the display last stopped
                display.remove_task(done.id)
            display.start()
        tid = display.add_task(description, total=total, status="")
        try:
            yield _RichBar(display, tid)
        finally:
            display.stop_task(tid)
            if all(t.stop_time is not None for t in display.tasks):
                display.stop()  # leaves the finished lines on screen; what is echoed next comes below them


def current() -> Terminal | None:
    """The terminal of the active `quiet_terminal` block in this process, if any."""
    return _active


@contextmanager
def progress(description: str, total: float | None = None, enabled: bool = True) -> Iterator[Bar]:
    """A progress line: on the active terminal's display, else a tqdm bar on stderr (or none if not enabled)."""
    term = _active
    if term is not None:
        with term.task(description, total) as bar:
            yield bar
        return
    if not enabled:
        yield _NoBar()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=description, file=sys.stderr, dynamic_ncols=True) as t:
        yield _TqdmBar(t)


@contextmanager
def quiet_terminal(log_file: Path, *, verbose: bool = False) -> Iterator[Terminal]:
    """Send this process's output and logging to `log_file` (unless verbose); yield the user's `Terminal`.

    Re-entrant: inside an active block it yields the active terminal. The file descriptors are restored on
    exit, so anything printed afterwards (e.g. Ray's shutdown at exit) reaches the terminal again.
    """
    global _active
    if _active is not None:
        yield _active
        return
    log_file = Path(log_file)
    with ExitStack() as stack:
        user_out = _user_stream(stack)
        console = Console(file=user_out, highlight=False, soft_wrap=True)
        root = logging.getLogger()
        old_level = root.level
        if verbose:
            handler: logging.Handler = logging.StreamHandler(sys.stderr)
        else:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_stream = stack.enter_context(open(log_file, "a", buffering=1, encoding="utf-8"))
            console.print(f"logs: {log_file} (--verbose shows them here)")
            stack.enter_context(_redirect_fds(log_stream))
            stack.enter_context(_environ(QUIET_ENV))
            handler = logging.StreamHandler(log_stream)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        stack.callback(_restore_logging, root, handler, old_level)
        display = Progress(
            SpinnerColumn(finished_text="[green]done"),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            redirect_stdout=False,  # Ray prints worker logs through sys.stdout: those belong in the file
            redirect_stderr=False,
        )
        stack.callback(lambda: display.stop() if display.live.is_started else None)
        _active = Terminal(console, None if verbose else log_file, display)
        try:
            yield _active
        finally:
            _active = None


class _RichBar:
    def __init__(self, display: Progress, tid: TaskID):
        self._display, self._tid = display, tid

    def advance(self, n: float = 1, status: str | None = None) -> None:
        fields: dict[str, Any] = {} if status is None else {"status": status}
        self._display.update(self._tid, advance=n, **fields)

    def update(self, completed: float | None = None, total: float | None = None, status: str | None = None) -> None:
        fields: dict[str, Any] = {} if status is None else {"status": status}
        self._display.update(self._tid, completed=completed, total=total, **fields)


class _TqdmBar:
    def __init__(self, bar: Any):
        self._bar = bar

    def advance(self, n: float = 1, status: str | None = None) -> None:
        if status is not None:
            self._bar.set_postfix_str(status, refresh=False)
        self._bar.update(n)

    def update(self, completed: float | None = None, total: float | None = None, status: str | None = None) -> None:
        if total is not None:
            self._bar.total = total
        if status is not None:
            self._bar.set_postfix_str(status, refresh=False)
        if completed is not None:
            self._bar.update(completed - self._bar.n)


class _NoBar:
    def advance(self, n: float = 1, status: str | None = None) -> None:
        pass

    def update(self, completed: float | None = None, total: float | None = None, status: str | None = None) -> None:
        pass


def _user_stream(stack: ExitStack) -> IO[str]:
    """The user's terminal, kept apart from fd 1 (which goes to the log file): a duplicate of fd 1 when stdout
    is a real file descriptor, else stdout itself (e.g. a test runner's captured stream)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.stdout
    return stack.enter_context(os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace"))


@contextmanager
def _redirect_fds(target: IO[str]) -> Iterator[None]:
    """Point fds 1 and 2 at `target` (C code, child processes, Python's own sys.stdout/err all follow)."""
    saved = []
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    for fd in (1, 2):
        saved.append(os.dup(fd))
        os.dup2(target.fileno(), fd)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        for fd, old in zip((1, 2), saved, strict=True):
            os.dup2(old, fd)
            os.close(old)


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables the user has not set, for the block."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _restore_logging(root: logging.Logger, handler: logging.Handler, level: int) -> None:
    root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


__all__ = ["Bar", "Terminal", "current", "progress", "quiet_terminal"]
