"""Fixtures of the deployment tests: the helm binary (as tests/k8s)."""

from __future__ import annotations

import pytest

from tests.k8s.support import validate as v


@pytest.fixture(scope="session")
def helm() -> str:
    exe = v.helm_bin()
    if exe is None:
        pytest.skip("helm not found: run scripts/fetch-helm.sh (scripts/setup.sh does)")
    return exe
