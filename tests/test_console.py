"""limr.console: logs and fd-level output go to the log file; the user's lines and progress to the terminal."""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from pathlib import Path

import pytest

from limr.console import current, progress, quiet_terminal


def test_quiet_terminal_sends_logs_and_fd_output_to_the_file(tmp_path: Path, monkeypatch) -> None:
    user = io.StringIO()  # the terminal (a test runner's stdout has no file descriptor)
    monkeypatch.setattr(sys, "stdout", user)
    log_file = tmp_path / "logs" / "cmd.log"
    # a library logger as a fresh process has it (Serve, started in-process by other tests, stops propagation)
    # (importing ray gives "ray" its own stderr handler, bound to pytest's capture here, and stops propagation)
    for name in ("ray", "ray.serve"):
        lib_logger = logging.getLogger(name)
        monkeypatch.setattr(lib_logger, "handlers", [])
        monkeypatch.setattr(lib_logger, "propagate", True)
        monkeypatch.setattr(lib_logger, "level", logging.NOTSET)
    with quiet_terminal(log_file) as term:
        assert current() is term
        logging.getLogger("ray.serve").info("one line per request")
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
        os.write(2, b"C++ warning straight to fd 2\n")
        os.write(1, b"a worker line echoed by the driver\n")
        term.echo("training the model")
        with progress("SFT warm start", total=3) as bar:
            for _ in range(3):
                bar.advance(status="loss 0.5")
    assert current() is None
    shown = user.getvalue()
    assert f"logs: {log_file}" in shown and "training the model" in shown and "SFT warm start" in shown
    for noise in ("one line per request", "deprecated thing", "C++ warning", "worker line"):
        assert noise not in shown
    logged = log_file.read_text()
    for line in ("one line per request", "deprecated thing", "C++ warning", "worker line", "training the model"):
        assert line in logged
    # the descriptors are back: output after the block no longer reaches the file
    os.write(2, b"after the block\n")
    assert "after the block" not in log_file.read_text()


def test_verbose_keeps_logs_on_the_terminal(tmp_path: Path, monkeypatch, capfd) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    with quiet_terminal(tmp_path / "x.log", verbose=True) as term:
        os.write(2, b"engine started\n")
        term.echo("hello")
    assert "engine started" in capfd.readouterr().err
    assert not (tmp_path / "x.log").exists()


def test_nested_blocks_share_one_terminal_and_errors_restore_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    with pytest.raises(RuntimeError), quiet_terminal(tmp_path / "a.log") as outer:
        with quiet_terminal(tmp_path / "b.log") as inner:
            assert inner is outer
        raise RuntimeError("boom")
    assert current() is None and not (tmp_path / "b.log").exists()


def test_progress_without_a_terminal_is_tqdm_or_nothing(capsys) -> None:
    with progress("steps", total=2) as bar:
        bar.advance(status="ok")
        bar.update(completed=2)
    assert "steps" in capsys.readouterr().err
    with progress("hidden", total=2, enabled=False) as bar:
        bar.advance()
    assert "hidden" not in capsys.readouterr().err
