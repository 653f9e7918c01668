"""A real MLflow tracking server (`mlflow server`, SQLite backend, artifacts served by the server) as a child
process on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.s3server import free_port


@contextmanager
def mlflow_server(timeout_s: float = 120.0) -> Iterator[str]:
    """Start `mlflow server` and yield its URL; the server and its files go at exit."""
    exe = Path(sys.executable).with_name("mlflow")
    work = Path(tempfile.mkdtemp(prefix="limr-mlflow-"))
    port = free_port()
    cmd = [str(exe), "server", "--backend-store-uri", f"sqlite:///{work}/mlflow.db",
           "--artifacts-destination", str(work / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]  # fmt: skip
    log = open(work / "server.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{(work / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow server not ready in {timeout_s}s:\n{(work / 'server.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        import os
        import signal

        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
