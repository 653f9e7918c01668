"""The WeightHub that keeps replicas on one version: versions, membership and command fan-out (no engine)."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import unique_name


def test_versions_keep_the_last_loadable_apart_from_the_latest() -> None:
    """What a cold replica loads: the newest version with a URI, which a transferred version (no URI) never hides."""
    from limr.rollout.sync import Versions

    v = Versions()
    assert (v.latest, v.loadable) == (0, (0, None))
    # Two racing updates reserve 1 and 2; the later-reserved one commits first, the older one then loses.
    assert (v.reserve(), v.reserve()) == (1, 2)
    assert v.commit(2, "s3://b/two") == 2 and v.commit(1, "s3://b/one") == 2
    assert (v.latest, v.loadable) == (2, (2, "s3://b/two"))
    # Transferred versions move `latest` only; their export, attached later, becomes what cold replicas load.
    assert v.commit(v.reserve()) == 3 and v.commit(v.reserve()) == 4
    assert (v.latest, v.loadable) == (4, (2, "s3://b/two"))
    assert v.attach(4, "s3://b/four") == (4, "s3://b/four")
    assert v.attach(3, "s3://b/three") == (4, "s3://b/four")  # an older export attached late changes nothing
    # A version committed before its reservation (another writer) still keeps reservations ahead of it.
    assert v.commit(9, "file:///nine") == 9 and v.reserve() == 10 and v.loadable == (9, "file:///nine")


@pytest.mark.ray
def test_hub_versions_across_replicas(ray_session) -> None:  # noqa: ANN001
    import ray

    from limr.rollout.sync import HUB_NAMESPACE, get_hub, hub_name

    dep = unique_name("dep")
    hub = get_hub(dep)
    assert ray.get(hub.latest.remote()) == 0 and ray.get(hub.loadable.remote()) == (0, None)
    v1 = ray.get(hub.reserve.remote())
    assert ray.get(hub.commit.remote(v1, "s3://b/one")) == 1
    v2 = ray.get(hub.reserve.remote())
    assert ray.get(hub.commit.remote(v2, None)) == 2 and ray.get(hub.loadable.remote()) == (1, "s3://b/one")
    assert ray.get(hub.attach.remote(v2, "s3://b/two")) == (2, "s3://b/two")
    # Every replica of the deployment gets the same actor; another deployment gets a fresh one.
    assert ray.get(get_hub(dep).loadable.remote()) == (2, "s3://b/two")
    other = unique_name("dep")
    assert ray.get(get_hub(other).latest.remote()) == 0
    for name in (dep, other):  # detached actors: clean up
        ray.kill(ray.get_actor(hub_name(name), namespace=HUB_NAMESPACE))


@pytest.mark.ray
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


@pytest.mark.ray
def test_should_end_the_hub_when_no_replica_is_live_for_orphan_s(ray_session) -> None:  # noqa: ANN001
    import time

    import ray

    from limr.rollout.sync import HUB_NAMESPACE, get_hub, hub_name

    dep = unique_name("dep")
    hub = get_hub(dep, ttl_s=0.5, orphan_s=1.5)
    ray.get(hub.register.remote("r1", 1, {}))
    for _ in range(8):  # a live replica keeps it, well past orphan_s
        time.sleep(0.5)
        assert ray.get(hub.heartbeat.remote("r1"))
    ray.get(hub.leave.remote("r1"))  # the deployment is deleted: its replicas leave
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            ray.get_actor(hub_name(dep), namespace=HUB_NAMESPACE)
        except ValueError:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the orphaned hub is still alive")
