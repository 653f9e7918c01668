"""The weight registry that keeps replicas on one version (a real Ray actor; no engine needed)."""

from __future__ import annotations

import pytest

from tests.conftest import unique_name

pytestmark = pytest.mark.ray


def test_registry_versions_reserve_commit_and_races(ray_session) -> None:  # noqa: ANN001
    import ray

    from limr.rollout.sync import get_registry, registry_name

    dep = unique_name("dep")
    reg = get_registry(dep)
    assert ray.get(reg.version.remote()) == 0 and ray.get(reg.latest.remote()).kind == "tensors"
    # Two racing updates reserve 1 and 2; the later-reserved one commits first, the older one then loses.
    v1, v2 = ray.get(reg.reserve.remote()), ray.get(reg.reserve.remote())
    assert (v1, v2) == (1, 2)
    assert ray.get(reg.commit.remote(v2, uri="s3://b/two")) == 2
    assert ray.get(reg.commit.remote(v1, uri="s3://b/one")) == 2
    latest = ray.get(reg.latest.remote())
    assert (latest.version, latest.uri, latest.kind) == (2, "s3://b/two", "uri")
    # A failed load reserves and never commits: its number is skipped, versions stay increasing.
    v3 = ray.get(reg.reserve.remote())
    v4 = ray.get(reg.reserve.remote())
    assert ray.get(reg.commit.remote(v4, tensors={"w": [1.0]})) == v4 == 4 and v3 == 3
    assert ray.get(reg.latest.remote()).tensors == {"w": [1.0]}
    # Every replica of the deployment gets the same actor; another deployment gets a fresh one.
    assert ray.get(get_registry(dep).version.remote()) == 4
    other = unique_name("dep")
    assert ray.get(get_registry(other).version.remote()) == 0
    for name in (dep, other):  # detached actors: clean up
        ray.kill(ray.get_actor(registry_name(name), namespace="limr-rollout"))
