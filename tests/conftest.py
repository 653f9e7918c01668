"""Session-wide fixtures: a real S3 server, a shared local Ray head, paths to ../shared data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.s3server import S3Server, start_s3_server

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_LIMR = SHARED / "data" / "limr"
SHARED_EVAL = SHARED / "data" / "eval"


def shared_file(*parts: str) -> Path:
    """A file from ../shared, or skip: tests may use shared data, the project must not need it."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} not present on this machine")
    return path


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """Point limr's S3 backend (environment variables) at the test server."""
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    return s3_server


@pytest.fixture
def s3_uri(s3_env: S3Server) -> str:
    """A fresh bucket (s3://...) on the test server, environment configured."""
    bucket = s3_env.make_bucket(f"t-{uuid.uuid4().hex[:12]}")
    return f"s3://{bucket}/limr"


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A single local Ray head for every Ray test of the session."""
    pytest.importorskip("ray")
    from tests.support.raycluster import start_local_ray

    start_local_ray(num_cpus=int(os.environ.get("LIMR_TEST_RAY_CPUS", "4")))
    yield
    import ray

    ray.shutdown()


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """With LIMR_NO_SKIPS=1 (set by .ci/run) a skip is a failure.

    Every skip in this suite is conditional on a missing tool or data file (helm, promtool, hadolint,
    vLLM, ../shared). CI installs all of them through scripts/setup.sh, so a skip there means a broken
    set-up step, which must not pass silently.
    """
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("LIMR_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under LIMR_NO_SKIPS=1 (CI installs every test dependency): {reason}"
