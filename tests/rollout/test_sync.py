"""The WeightHub that keeps replicas on one version: versions, membership and command fan-out (no engine)."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import unique_name

pytestmark = pytest.mark.ray


def test_hub_versions_reserve_commit_and_races(ray_session) -> None:  # noqa: ANN001
    import ray

    from limr.rollout.sync import HUB_NAMESPACE, get_hub, hub_name

    dep = unique_name("dep")
    hub = get_hub(dep)
    assert ray.get(hub.latest.remote()) == (0, None)
    # Two racing updates reserve 1 and 2; the later-reserved one commits first, the older one then loses.
    v1, v2 = ray.get(hub.reserve.remote()), ray.get(hub.reserve.remote())
    assert (v1, v2) == (1, 2)
    assert ray.get(hub.commit.remote(v2, "s3://b/two")) == 2
    assert ray.get(hub.commit.remote(v1, "s3://b/one")) == 2
    assert ray.get(hub.latest.remote()) == (2, "s3://b/two")
    # A transferred version has no URI: a replica started later cannot load it, it waits for the next transfer.
    v3 = ray.get(hub.reserve.remote())
    assert ray.get(hub.commit.remote(v3, None)) == 3 and ray.get(hub.latest.remote()) == (3, None)
    # Every replica of the deployment gets the same actor; another deployment gets a fresh one.
    assert ray.get(get_hub(dep).latest.remote())[0] == 3
    other = unique_name("dep")
    assert ray.get(get_hub(other).latest.remote()) == (0, None)
    for name in (dep, other):  # detached actors: clean up
        ray.kill(ray.get_actor(hub_name(name), namespace=HUB_NAMESPACE))


def test_hub_fans_commands_out_and_drops_silent_members(ray_session) -> None:  # noqa: ANN001
    import ray

    from limr.rollout.sync import HUB_NAMESPACE, HubSyncClient, WeightSyncError, get_hub, hub_name

    dep = unique_name("dep")
    hub = get_hub(dep, ttl_s=1.5)
    for rid, workers in (("r1", 1), ("r2", 2)):
        ray.get(hub.register.remote(rid, workers, {"w": (2, 2)}))
    members = ray.get(hub.members.remote())
    assert members == [("r1", 1), ("r2", 2)] and ray.get(hub.shapes.remote()) == {"w": (2, 2)}
    seen: dict[str, list[dict]] = {"r1": [], "r2": []}

    def replica(rid: str, fail_op: str | None) -> None:  # what RolloutServer's control loop does
        while len(seen[rid]) < 2:
            for cmd in ray.get(hub.poll.remote(rid, 0.5)) or []:
                seen[rid].append(cmd)
                ray.get(hub.ack.remote(rid, cmd["seq"], "boom" if cmd["op"] == fail_op else None))

    threads = [threading.Thread(target=replica, args=(r, "start" if r == "r2" else None)) for r in seen]
    for t in threads:
        t.start()
    client = HubSyncClient(hub, members, timeout_s=30)
    assert client.world_size == 4  # the learner + 1 + 2 workers
    client.init_weight_transfer_engine({"rank_offset": 1, "world_size": 4})
    with pytest.raises(WeightSyncError, match="r2"):  # one member's failure fails the call
        client.start_weight_update()
    for t in threads:
        t.join(30)
    # each replica's workers get their own first rank in the group
    assert [seen[r][0]["init_info"]["rank_offset"] for r in ("r1", "r2")] == [1, 2]
    # a member whose heartbeat stops is dropped after the TTL, so the learner forms a new group without it, and a
    # command waiting on it fails at once instead of at its timeout
    import time

    for _ in range(4):
        time.sleep(0.5)
        assert ray.get(hub.heartbeat.remote("r1"))
    assert ray.get(hub.members.remote()) == [("r1", 1)]
    t0 = time.monotonic()
    with pytest.raises(WeightSyncError, match="left the deployment"):
        HubSyncClient(hub, [("r1", 1), ("r2", 2)], timeout_s=60)._call({"r2": {"op": "start"}})
    assert time.monotonic() - t0 < 10
    assert not ray.get(hub.heartbeat.remote("r2"))  # r2 must register again
    ray.kill(ray.get_actor(hub_name(dep), namespace=HUB_NAMESPACE))
