"""The control plane that keeps every replica of a rollout deployment on one weight version.

A Serve handle call reaches ONE replica, yet a weight update must reach all of them. The `WeightHub`, one small
named Ray actor per deployment, is where they meet. It holds no tensors (weights travel over the weight-transfer
group, limr.rollout.transfer, or are loaded from a checkpoint URI):

- versions: `reserve` hands out increasing numbers; `commit` records the latest version the replicas serve.
  Separately the hub remembers the newest version that has a loadable URI (`attach`: a checkpoint loaded through
  the service, or the learner's periodic export of a transferred version, limr.learner.generator.exporter), so a
  replica that starts or restarts mid-run loads `loadable()` before serving, then joins the transfer group at the
  learner's next update. A transferred version has no URI of its own and never hides the last loadable one;
- membership: every replica `register`s (its id, workers, parameter shapes), sends a `heartbeat` every second
  (from its own thread, so a long transfer does not silence it) and long-polls for commands; one whose heartbeat
  stops for `ttl_s` is dropped, and commands waiting on it fail. The learner reads the live members and forms one
  transfer group with all of them, again whenever the membership changes (autoscaled replicas join at the next
  update);
- commands: `HubSyncClient` implements vLLM's `VLLMWeightSyncClient` protocol (init / start / update / finish)
  by posting each call to every member and waiting for all their acknowledgements.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ray

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 600.0
# A hub with no live replica for this long ends itself (a deleted or redeployed application's hub).
ORPHAN_S = 1800.0
HUB_NAMESPACE = "limr-rollout"


@dataclass
class Versions:
    """The hub's version bookkeeping (plain Python, so its rules are tested without Ray).

    `latest` is what the replicas serve (transferred or loaded); `loadable` the newest version with a URI, which
    lags behind `latest` between the learner's exports. Both only move forwards: an update that lost a race
    (committed or attached after a newer one) changes nothing.
    """

    latest: int = 0
    reserved: int = 0
    loadable: tuple[int, str | None] = (0, None)

    def reserve(self) -> int:
        self.reserved += 1
        return self.reserved

    def commit(self, version: int, uri: str | None = None) -> int:
        if version > self.latest:
            self.latest = version
            self.reserved = max(self.reserved, version)
        if uri is not None:
            self.attach(version, uri)
        return self.latest

    def attach(self, version: int, uri: str) -> tuple[int, str | None]:
        if version > self.loadable[0]:
            self.loadable = (version, uri)
        return self.loadable


@dataclass
class Member:
    replica_id: str
    workers: int  # vLLM workers of the replica (tensor x pipeline parallel): its ranks in the transfer group
    shapes: dict[str, tuple[int, ...]]
    seen: float = field(default_factory=time.monotonic)
    commands: list[dict[str, Any]] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


@ray.remote(num_cpus=0)
class WeightHub:
    """Versions, members and their command queues for one deployment (async actor: polls wait without threads)."""

    def __init__(self, ttl_s: float = 5.0, orphan_s: float = ORPHAN_S) -> None:
        self._versions = Versions()
        self._members: dict[str, Member] = {}
        self._ttl_s = ttl_s
        self._orphan_s = orphan_s
        self._last_live = time.monotonic()
        self._reaper: asyncio.Task[None] | None = None
        self._seq = 0
        self._acks: dict[int, dict[str, str | None]] = {}  # seq -> replica -> error (None: ok)
        self._acked = asyncio.Condition()

    # ---- lifetime -----------------------------------------------------------------------------------------
    def _watch(self) -> None:
        """Start the reaper on the first call (an async actor's event loop runs only in its methods)."""
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """End this (detached) actor once no live replica has been seen for `orphan_s`: its deployment was
        deleted or redeployed under a new id (`build_app` makes a fresh one each time), so nothing will use it
        again. `orphan_s` is far longer than Serve takes to replace a replica, so a restart keeps its versions."""
        while True:
            await asyncio.sleep(min(self._orphan_s / 4, 10.0))
            now = time.monotonic()
            if any(self._alive(r) for r in self._members):
                self._last_live = now
            elif now - self._last_live >= self._orphan_s:
                log.warning("weight hub: no live replica for %.0f s; exiting", now - self._last_live)
                ray.kill(ray.get_runtime_context().current_actor)
                return

    # ---- versions -----------------------------------------------------------------------------------------
    async def reserve(self) -> int:
        return self._versions.reserve()

    async def commit(self, version: int, uri: str | None = None) -> int:
        """Record a version the replicas now serve (with its URI when it was loaded from one); an older one
        committed late (racing updates) is dropped. Returns the latest."""
        return self._versions.commit(version, uri)

    async def attach(self, version: int, uri: str) -> tuple[int, str | None]:
        """Record that `version` (already served) can be loaded from `uri`; returns `loadable()`."""
        return self._versions.attach(version, uri)

    async def latest(self) -> int:
        """The latest version the replicas serve (0: the deployment's base checkpoint)."""
        return self._versions.latest

    async def loadable(self) -> tuple[int, str | None]:
        """What a replica that starts or restarts loads before serving: the newest version with a URI
        ((0, None): none yet, serve the base checkpoint)."""
        self._watch()
        return self._versions.loadable

    # ---- membership ---------------------------------------------------------------------------------------
    async def register(self, replica_id: str, workers: int, shapes: dict[str, tuple[int, ...]]) -> None:
        self._watch()
        self._members[replica_id] = Member(replica_id, workers, shapes)

    async def heartbeat(self, replica_id: str) -> bool:
        """A member is alive; False: not a member (any more), register again."""
        member = self._members.get(replica_id)
        if member is not None:
            member.seen = time.monotonic()
        return member is not None

    def _alive(self, replica_id: str) -> bool:
        member = self._members.get(replica_id)
        return member is not None and time.monotonic() - member.seen <= self._ttl_s

    async def leave(self, replica_id: str) -> None:
        self._members.pop(replica_id, None)

    async def members(self) -> list[tuple[str, int]]:
        """Live members (replica id, workers), in a stable order: a changed list means a new group."""
        for rid in [r for r in self._members if not self._alive(r)]:
            del self._members[rid]
        return sorted((r, m.workers) for r, m in self._members.items())

    async def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter shapes of the served checkpoint (every member serves the same one)."""
        return next(iter(self._members.values())).shapes if self._members else {}

    # ---- commands -----------------------------------------------------------------------------------------
    async def post(self, commands: dict[str, dict[str, Any]]) -> int:
        """Queue one command per replica (replica id -> command); returns the sequence number to wait on."""
        self._seq += 1
        self._acks[self._seq] = {}
        for rid, command in commands.items():
            member = self._members.get(rid)
            if member is None:
                self._acks[self._seq][rid] = "replica left the deployment"
                continue
            member.commands.append({**command, "seq": self._seq})
            member.wakeup.set()
        return self._seq

    async def poll(self, replica_id: str, timeout_s: float = 2.0) -> list[dict[str, Any]] | None:
        """A member's pending commands (waits up to timeout_s); also its heartbeat. None: not a member (any more)."""
        member = self._members.get(replica_id)
        if member is None:
            return None
        if not member.commands:
            member.wakeup.clear()
            try:
                await asyncio.wait_for(member.wakeup.wait(), timeout_s)
            except TimeoutError:
                pass
        out, member.commands = member.commands, []
        return out

    async def ack(self, replica_id: str, seq: int, error: str | None = None) -> None:
        async with self._acked:
            self._acks.setdefault(seq, {})[replica_id] = error
            self._acked.notify_all()

    async def wait(self, seq: int, replicas: list[str], timeout_s: float = COMMAND_TIMEOUT_S) -> dict[str, str]:
        """Wait until every replica acknowledged command `seq` (or left); returns replica -> error for failures."""

        def done() -> bool:
            acks = self._acks.get(seq, {})
            return all(r in acks or not self._alive(r) for r in replicas)

        async with self._acked:
            deadline = time.monotonic() + timeout_s
            while not done() and time.monotonic() < deadline:  # wake up at least every second: members may die
                try:
                    await asyncio.wait_for(self._acked.wait(), 1.0)
                except TimeoutError:
                    pass
            acks = self._acks.pop(seq, {})
        errors = {r: acks[r] for r in replicas if acks.get(r)}
        errors.update({r: "no answer (replica gone or stuck)" for r in replicas if r not in acks})
        return {r: e for r, e in errors.items() if e}


class WeightSyncError(RuntimeError):
    """A weight update did not reach every member of the transfer group."""


class HubSyncClient:
    """vLLM's `VLLMWeightSyncClient` for a whole deployment: each call goes to every member through the hub.

    `members` is the group's membership (replica id, workers) in rank order: replica i's workers take group ranks
    1 + (workers of the replicas before it) onwards, so the learner (rank 0) reaches all of them in one broadcast.
    The version of the update is set before sending and handed to the members with `finish_weight_update`.
    """

    def __init__(self, hub: Any, members: list[tuple[str, int]], timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        self.hub, self.members, self.timeout_s = hub, members, timeout_s
        self.version: int | None = None

    @property
    def world_size(self) -> int:
        return 1 + sum(w for _, w in self.members)

    def _call(self, commands: dict[str, dict[str, Any]]) -> None:
        seq = ray.get(self.hub.post.remote(commands))
        errors = ray.get(self.hub.wait.remote(seq, list(commands), self.timeout_s))
        if errors:
            raise WeightSyncError(f"{next(iter(commands.values()))['op']} failed on {errors}")

    def _all(self, op: str, **kwargs: Any) -> None:
        self._call({rid: {"op": op, **kwargs} for rid, _ in self.members})

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        commands, offset = {}, int(init_info["rank_offset"])
        for rid, workers in self.members:
            commands[rid] = {"op": "init", "init_info": {**init_info, "rank_offset": offset}}
            offset += workers
        self._call(commands)

    def start_weight_update(self) -> None:
        self._all("start")

    def update_weights(self, update_info: dict[str, Any] | list[dict[str, Any]]) -> None:
        self._all("update", update_info=update_info)

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        version = self.version if weight_version is None else int(weight_version)
        self._all("finish", version=version)


def hub_name(deployment_id: str) -> str:
    return f"limr-rollout-weights-{deployment_id}"


def get_hub(deployment_id: str, ttl_s: float = 5.0, orphan_s: float = ORPHAN_S) -> Any:
    """The deployment's hub actor, created by whichever replica asks first.

    Detached, so it outlives any single replica (Serve replaces replicas freely); `deployment_id` is fresh
    for every `build_app`, so a redeployed application never inherits an old application's weights. It ends
    itself once it has had no live replica for `orphan_s` (from its first `loadable` or `register` call), so
    deleted and redeployed applications leave no hub behind.
    """
    return WeightHub.options(
        name=hub_name(deployment_id),
        get_if_exists=True,
        lifetime="detached",
        namespace=HUB_NAMESPACE,
        # on the head node: it must outlive the loss of any worker node (a rollout node taken away mid-run)
        resources={"node:__internal_head__": 0.001},
    ).remote(ttl_s, orphan_s)
