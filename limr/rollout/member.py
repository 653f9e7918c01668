"""A replica's side of its deployment's `WeightHub` (limr.rollout.sync): the membership loop every rollout replica
runs (load the newest loadable version, register, heartbeat, run the hub's transfer commands). Apart from the hub
because it runs inside the replica's process, next to its engine, while the hub is one actor per deployment."""

from __future__ import annotations

import logging
import threading
from typing import Any

import ray

from limr.rollout.types import WeightLoadError

log = logging.getLogger(__name__)


class ReplicaMember:
    """One replica's side of its deployment's `WeightHub`: it loads the newest loadable version before serving and
    whenever the hub has a newer one (`sync`, also on a timer), registers with its workers and parameter shapes,
    heartbeats, and runs the hub's transfer commands on a control thread. `engine` is the replica's
    limr.rollout.engine.RolloutEngine, `metrics` its limr.rollout.metrics.RolloutMetrics."""

    def __init__(
        self, hub: Any, replica_id: str, engine: Any, metrics: Any, transfer_timeout_s: float, sync_interval_s: float
    ) -> None:
        self.hub, self.replica_id, self.engine, self.metrics = hub, replica_id, engine, metrics
        self.transfer_timeout_s, self.sync_interval_s = transfer_timeout_s, sync_interval_s
        self._lock = threading.Lock()  # one weight load at a time per replica
        self._stop = threading.Event()

    def start(self) -> None:
        """Catch up with the hub's loadable version, join, and start the sync, control and heartbeat threads."""
        self.sync()
        self.register()
        threading.Thread(target=self._sync_loop, name="weight-sync", daemon=True).start()
        threading.Thread(target=self._control_loop, name="weight-transfer", daemon=True).start()
        threading.Thread(target=self._heartbeat_loop, name="weight-heartbeat", daemon=True).start()

    def stop(self) -> None:
        """Leave the transfer group at once (else the hub drops this replica after its TTL)."""
        self._stop.set()
        try:
            self.hub.leave.remote(self.replica_id)
        except Exception:  # the hub may be gone already
            pass

    def sync(self) -> None:
        """Load the hub's newest loadable version if it is newer than what this replica serves (blocking).

        Loadable versions are checkpoints loaded through the service and the learner's periodic exports of
        transferred versions (limr.learner.generator.exporter), so a replica that starts or restarts mid-run serves the
        newest export, not the base checkpoint. A transferred version newer than that export reaches it only with
        the learner's next update, which includes it in the group; meanwhile its results carry the older version
        (the learner retries a step whose rollouts are not all of the version it sent, limr.learner.loop).
        """
        version, uri = ray.get(self.hub.loadable.remote())
        if version <= self.engine.weight_version or uri is None:
            return
        with self._lock:
            if version <= self.engine.weight_version:
                return
            self.engine.load_checkpoint(uri, version=version)
            self.metrics.weight_updates.labels("sync", "ok").inc()
            self.metrics.weight_version.set(self.engine.weight_version)

    def register(self) -> None:
        ray.get(self.hub.register.remote(self.replica_id, self.engine.workers, self.engine.shapes))

    def _control_loop(self) -> None:
        """Run the hub's weight-transfer commands (init / start / update / finish) for this replica, in order.

        The poll is also the replica's heartbeat. An update whose next command does not come within the
        transfer timeout is aborted (the sender died): the engine refuses to sample until weights are whole.
        """
        while not self._stop.is_set():
            try:
                commands = ray.get(self.hub.poll.remote(self.replica_id))
                if commands is None:  # not a member (dropped): the heartbeat thread registers again
                    self._stop.wait(0.5)
                    continue
                if not commands and self.engine.updating_for() > self.transfer_timeout_s:
                    self.engine.abort_update("the learner stopped mid-update")
                for command in commands:
                    self._run_command(command)
            except Exception:  # hub unreachable: keep trying, the learner sees the missing acks
                log.exception("weight-transfer control loop")
                self._stop.wait(1.0)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                if not ray.get(self.hub.heartbeat.remote(self.replica_id)):
                    self.register()  # dropped (e.g. the hub restarted or we stalled): join again
            except Exception:  # hub unreachable: keep trying
                log.exception("weight-transfer heartbeat")

    def _run_command(self, command: dict[str, Any]) -> None:
        error = None
        try:
            op = command["op"]
            if op == "init":
                self.engine.init_transfer(command["init_info"])
            elif op == "start":
                self.engine.begin_update(self.transfer_timeout_s)
            elif op == "update":
                self.engine.receive_update(command["update_info"])
            elif op == "finish":
                self.engine.finish_update(int(command["version"]))
                self.metrics.weight_updates.labels("transfer", "ok").inc()
                self.metrics.weight_version.set(self.engine.weight_version)
            else:
                raise WeightLoadError(f"unknown weight-transfer command {op!r}")
        except Exception as e:
            log.exception("weight-transfer command %s failed", command.get("op"))
            self.metrics.weight_updates.labels("transfer", "error").inc()
            error = f"{type(e).__name__}: {e}"
        ray.get(self.hub.ack.remote(self.replica_id, command["seq"], error))

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.sync_interval_s):
            try:
                self.sync()
            except Exception:  # keep trying; requests sync (and report errors) on their own path too
                log.exception("weight sync failed")

    def load(self, uri: str, source: str) -> int:
        """Load a checkpoint here, then commit its URI so every other replica follows (blocking)."""
        with self._lock:
            version = ray.get(self.hub.reserve.remote())
            try:
                self.engine.load_checkpoint(uri, version=version)
            except Exception:
                self.metrics.weight_updates.labels(source, "error").inc()
                raise
            ray.get(self.hub.commit.remote(version, uri))
            self.metrics.weight_updates.labels(source, "ok").inc()
            self.metrics.weight_version.set(version)
            return version
