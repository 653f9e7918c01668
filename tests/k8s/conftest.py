"""Fixtures of the Kubernetes tests: a real helm binary and rendered chart output, cached per values set."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from tests.k8s.support import validate as v

Objects = list[dict[str, Any]]


@pytest.fixture(scope="session")
def helm() -> str:
    exe = v.helm_bin()
    if exe is None:
        pytest.skip("helm not found: run scripts/fetch-helm.sh (scripts/setup.sh does)")
    return exe


@pytest.fixture(scope="session")
def crds() -> None:
    if not v.CRD_DIR.is_dir():
        pytest.skip(f"CRD schemas {v.CRD_DIR} not present on this machine")


@functools.cache
def _render(values: tuple[str, ...], set_values: tuple[str, ...], api_versions: tuple[str, ...]) -> Objects:
    return v.render_chart(values, set_values, api_versions)


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., Objects]:
    """render(values-file names..., set=[...], api_versions=[...]) -> objects; cached, so treat as read-only."""

    def _do(*values: str, set: tuple[str, ...] = (), api_versions: tuple[str, ...] = v.API_VERSIONS) -> Objects:  # noqa: A002
        files = tuple(str(v.CHART / name) for name in values)
        return _render(files, tuple(set), tuple(api_versions))

    return _do
