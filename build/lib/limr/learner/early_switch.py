"""Online early-LIM curation: train on the full pool for K epochs, then on the early-LIM subset, in one run.

`curation.mode: early-lim`. After K epochs of the full pool the scorer (following the run's events, with a
policy `early_epochs: K`) publishes a provisional dataset version: the prompts early LIM predicts the full
run would select. Rank 0 waits for that version in the dataset API (`wait_for_subset`), the switch is
recorded in the store (`runs/{run}/curation.json`) and broadcast, and the remaining steps train on the subset
(`SwitchedPlan`), same batch size, seeded epochs over the subset. A resumed run reads the record back, so it
continues on exactly the same subset.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from limr.events.schema import run_prefix
from limr.learner.data import PromptPlan, StepPrompts
from limr.store import ObjectNotFound, ObjectStore


class SwitchError(RuntimeError):
    """The early-LIM subset could not be obtained (no provisional version in time, unknown prompts...)."""


@dataclass(frozen=True)
class PoolSwitch:
    """When the run left the full pool, and for which subset."""

    step: int  # first step on the subset
    epoch: int  # epochs of the full pool before it (K)
    indices: list[int]  # pool indices of the subset, ascending
    dataset: str
    version: int
    status: str  # the version's status when it was read (provisional, interim or final)
    epochs_used: int  # epochs the version was predicted (or scored) from
    predicted_precision: float | None

    def to_json(self) -> bytes:
        return json.dumps({"mode": "early-lim", **asdict(self)}, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> PoolSwitch:
        d = json.loads(data)
        d.pop("mode", None)
        return cls(**d)


def curation_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}curation.json"


def read_switch(store: ObjectStore, run_id: str) -> PoolSwitch | None:
    try:
        return PoolSwitch.from_json(store.get(curation_key(run_id)))
    except ObjectNotFound:
        return None


def write_switch(store: ObjectStore, run_id: str, switch: PoolSwitch) -> None:
    store.put(curation_key(run_id), switch.to_json(), "application/json")


class SwitchedPlan:
    """The full pool's plan before the switch; after it, seeded epochs over the subset (same batch size).

    Subset epoch j is a permutation seeded by (seed, K + j), so the order depends only on the step counter
    and the recorded switch, as the full pool's does (`PromptPlan`): resuming continues exactly.
    """

    def __init__(self, base: PromptPlan, switch: PoolSwitch | None = None, min_step_prompts: int = 1) -> None:
        """`min_step_prompts` (the number of workers): a subset epoch's last step with fewer prompts is
        folded into the step before it, so that every worker has a prompt."""
        self.base = base
        self.switch = switch
        self.min_step_prompts = min_step_prompts

    @property
    def steps_per_epoch(self) -> int:
        return self.base.steps_per_epoch

    def for_step(self, step: int) -> StepPrompts:
        sw = self.switch
        if sw is None or step < sw.step:
            return self.base.for_step(step)
        subset, batch = np.asarray(sw.indices), self.base.batch
        per_epoch = -(-len(subset) // batch)
        if per_epoch > 1 and 0 < len(subset) % batch < self.min_step_prompts:
            per_epoch -= 1  # the short tail joins the epoch's last full step
        j, i = divmod(step - sw.step, per_epoch)
        epoch = sw.epoch + j
        order = subset[np.random.default_rng([self.base.seed, epoch]).permutation(len(subset))]
        end = len(subset) if i == per_epoch - 1 else (i + 1) * batch
        return StepPrompts(step, epoch, [int(x) for x in order[i * batch : end]])

    def fingerprint(self) -> str:
        return self.base.fingerprint()


def pick_version(items: list[dict[str, Any]], run_id: str, epochs: int) -> dict[str, Any] | None:
    """The newest version of `run_id` selected from at least `epochs` epochs (as the API lists versions)."""
    ok = [v for v in items if v.get("run") == run_id and (v.get("epochs_used") or 0) >= epochs]
    return max(ok, key=lambda v: v["version"]) if ok else None


def wait_for_subset(
    get_json: Callable[[str], Any],
    get_text: Callable[[str], str],
    dataset: str,
    run_id: str,
    epochs: int,
    timeout_s: float,
    poll_s: float = 2.0,
) -> tuple[dict[str, Any], list[str]]:
    """Poll the dataset API until `dataset` has a version of this run from >= `epochs` epochs; return its
    listing entry and prompt ids. `get_json(path)` returns the decoded body or None on 404."""
    deadline = time.monotonic() + timeout_s
    while True:
        listing = get_json(f"/v1/datasets/{dataset}/versions")
        found = pick_version((listing or {}).get("items") or [], run_id, epochs)
        if found is not None:
            text = get_text(f"/v1/datasets/{dataset}/versions/{found['version']}/data?format=jsonl")
            ids = [json.loads(line)["prompt_id"] for line in text.splitlines() if line.strip()]
            return found, ids
        if time.monotonic() >= deadline:
            raise SwitchError(
                f"dataset {dataset!r} has no version of run {run_id!r} from {epochs} epochs after {timeout_s:.0f} s:"
                " is a scorer with an `early_epochs` policy for this run following the store?"
            )
        time.sleep(poll_s)


def make_switch(
    found: dict[str, Any], prompt_ids: list[str], pool_ids: list[str], step: int, epoch: int, dataset: str
) -> PoolSwitch:
    """The switch to the version `found` (an API listing entry) whose records are `prompt_ids`."""
    index = {pid: i for i, pid in enumerate(pool_ids)}
    unknown = [pid for pid in prompt_ids if pid not in index]
    if unknown:
        raise SwitchError(
            f"dataset {dataset!r} v{found['version']}: {len(unknown)} prompt(s) not in the run's pool,"
            f" e.g. {unknown[0]!r}"
        )
    if not prompt_ids:
        raise SwitchError(f"dataset {dataset!r} v{found['version']} selects no prompt; nothing to train on")
    return PoolSwitch(
        step=step,
        epoch=epoch,
        indices=sorted(index[pid] for pid in set(prompt_ids)),
        dataset=dataset,
        version=int(found["version"]),
        status=str(found.get("status") or "unknown"),
        epochs_used=int(found.get("epochs_used") or epoch),
        predicted_precision=found.get("predicted_precision"),
    )


def api_readers(base_url: str) -> tuple[Callable[[str], Any], Callable[[str], str]]:
    """(get_json, get_text) against the dataset API, with the read token of the environment if any
    (LIMR_READ_TOKEN, else LIMR_API_TOKEN). get_json returns None on 404 (no such dataset yet)."""
    import os

    import httpx

    token = os.environ.get("LIMR_READ_TOKEN") or os.environ.get("LIMR_API_TOKEN")
    client = httpx.Client(
        base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=60.0
    )

    def get(path: str) -> httpx.Response | None:
        try:
            resp = client.get(path)
        except httpx.HTTPError as e:
            raise SwitchError(f"{client.base_url}{path}: {e}") from None
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise SwitchError(f"{client.base_url}{path}: HTTP {resp.status_code}: {resp.text[:200]}")
        return resp

    def get_json(path: str) -> Any:
        resp = get(path)
        return None if resp is None else resp.json()

    def get_text(path: str) -> str:
        resp = get(path)
        if resp is None:
            raise SwitchError(f"{client.base_url}{path}: HTTP 404")
        return resp.text

    return get_json, get_text


def switch_if_due(
    step: int,
    plan: SwitchedPlan,
    pool_ids: list[str],
    store: ObjectStore,
    run_id: str,
    ctx: Any,  # limr.learner.dist.DistCtx (is_main, broadcast_object)
    *,
    epochs: int,
    dataset: str,
    api_url: str,
    timeout_s: float,
) -> PoolSwitch | None:
    """At the first step after `epochs` epochs of the full pool: rank 0 fetches the early-LIM subset and
    records the switch, every rank applies it. Returns the switch made at this step (None otherwise)."""
    if plan.switch is not None or step != epochs * plan.steps_per_epoch:
        return None
    made: PoolSwitch | None = None
    error: str | None = None
    if ctx.is_main:
        try:
            get_json, get_text = api_readers(api_url)
            found, ids = wait_for_subset(get_json, get_text, dataset, run_id, epochs, timeout_s)
            made = make_switch(found, ids, pool_ids, step, epochs, dataset)
            write_switch(store, run_id, made)
        except SwitchError as e:
            error = str(e)
    made, error = ctx.broadcast_object((made, error))  # every rank fails the same way, none waits forever
    if error is not None:
        raise SwitchError(error)
    plan.switch = made
    return made
