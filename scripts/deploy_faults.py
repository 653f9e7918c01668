"""Fault experiments on the container deployment (docs/deploy.md#faults): one training run, four faults in turn,
each outcome measured and printed as one JSON document. Run once, by hand, on a deployment that is up:

    make up && flock /tmp/limr-heavy.lock .venv/bin/python scripts/deploy_faults.py > faults.json

1. `docker network disconnect` a Ray worker for 30 s, then reconnect it at the same address;
2. restart the S3 container mid-run;
3. kill the scorer's process mid-ingest (a crash: its restart policy brings it back; `docker kill` is a manual
   stop for Docker, after which no restart policy applies, so we SIGKILL the process from the host);
4. `docker kill` the Ray worker that hosts a Ray Train worker, and start it again 20 s later (KubeRay recreates
   a deleted pod).
Then: the job's status, every step's events written exactly once, the scorer's final dataset equal to
`limr select` on the same events, and the restarts Docker counted.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from limr.deploy import client as c
from limr.deploy.up import Settings, build_plan, published_ports, ray_token_file
from limr.events.schema import EVENT_KEY_RE

STEPS = 32  # values-kind's 8 steps per 2 epochs, run for 8 epochs: room for four faults and their recoveries
NET = "limr-net"


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _summary() -> dict[str, Any]:
    ports = published_ports()
    p = build_plan(Settings())
    # Ray Train restarts from the last checkpoint (every 4 steps) when a worker dies; values-kind allows none.
    job = f"{p.job_entrypoint} --set run.epochs={STEPS // 4} --set trainer.max_failures=4"
    return {"ray": f"http://127.0.0.1:{ports['ray']}", "api": f"http://127.0.0.1:{ports['api']}",
            "prometheus": f"http://127.0.0.1:{ports['prometheus']}",
            "ray_token_file": str(ray_token_file(Settings(), p)), "job": job}  # fmt: skip


def _parts(run_id: str) -> dict[int, Counter[int]]:
    """Per step, how many event objects each attempt wrote (a resumed attempt N writes `-aNNNN` keys of its own;
    limr.events.attempts)."""
    out: dict[int, Counter[int]] = {}
    for k in c.store_keys(f"runs/{run_id}/events/"):
        if m := EVENT_KEY_RE.match(k):
            out.setdefault(int(m["step"]), Counter())[int(m["attempt"] or 0)] += 1
    return out


def _steps(run_id: str) -> Counter[int]:
    return Counter({step: sum(by.values()) for step, by in _parts(run_id).items()})


def _until_step(s: dict[str, Any], run_id: str, step: int, timeout_s: float = 1800) -> None:
    """Wait until the run has written `step`; a job that ended first is an error (raise STEPS), never a hang."""

    def reached() -> bool:
        if max(_steps(run_id), default=-1) >= step:
            return True
        if (status := c.job_status(s, run_id)) in {"SUCCEEDED", "FAILED", "STOPPED"}:
            raise RuntimeError(f"the job ended ({status}) before step {step}: too few STEPS for every fault")
        return False

    c.wait_for(f"step {step}", reached, timeout_s, every_s=10)


def _restarts(name: str) -> int:
    return int(c.run(["docker", "inspect", "--format", "{{.RestartCount}}", name], timeout=30).stdout)


def main() -> None:
    s = _summary()
    run_id = f"faults-{int(time.time())}"
    out: dict[str, Any] = {"run": run_id, "steps": STEPS, "faults": []}
    t0 = time.monotonic()
    c.submit(s, run_id, wait=False)
    _log(f"submitted {run_id}")

    _until_step(s, run_id, 1)
    worker = "limr-ray-cpu-worker-2"
    ip = json.loads(c.run(["docker", "inspect", worker], timeout=30).stdout)[0]["NetworkSettings"]["Networks"][NET]
    c.run(["docker", "network", "disconnect", NET, worker], timeout=60)
    _log(f"disconnected {worker}")
    time.sleep(30)
    c.run(["docker", "network", "connect", "--ip", ip["IPAddress"], NET, worker], timeout=60)
    _log(f"reconnected {worker}")
    out["faults"].append({"fault": "network disconnect 30 s", "container": worker, "job": c.job_status(s, run_id),
                          "steps_seen": len(_steps(run_id))})  # fmt: skip

    step = max(_steps(run_id), default=0) + 1
    _until_step(s, run_id, step)
    c.run(["docker", "restart", "s3"], timeout=120)
    _log("restarted s3")
    out["faults"].append({"fault": "S3 restart", "at_step": step, "job": c.job_status(s, run_id)})

    step = max(_steps(run_id), default=0) + 1
    _until_step(s, run_id, step)
    pid = c.run(["docker", "inspect", "--format", "{{.State.Pid}}", "limr-scorer"], timeout=30).stdout.strip()
    children = c.run(["pgrep", "-P", pid], timeout=30).stdout.split()  # the init's child: `limr serve scorer`
    before = _restarts("limr-scorer")
    c.run(["kill", "-9", *children], timeout=30)
    _log("killed the scorer's process")
    c.wait_for("the scorer back", lambda: _restarts("limr-scorer") > before, 120)
    out["faults"].append({"fault": "scorer SIGKILL mid-ingest", "at_step": step, "restarts": _restarts("limr-scorer")})

    step = max(_steps(run_id), default=0) + 1
    _until_step(s, run_id, step)
    hosts = [where for state, where in c.train_workers() if state == "ALIVE"]
    victim = hosts[0] if hosts else worker
    c.run(["docker", "kill", victim], timeout=60)
    _log(f"killed {victim}")
    time.sleep(20)
    c.run(["docker", "start", victim], timeout=60)
    _log(f"started {victim} again")
    out["faults"].append({"fault": "docker kill a Ray worker", "container": victim, "at_step": step})

    status = c.wait_for("the job's end", lambda: (st := c.job_status(s, run_id)) in {"SUCCEEDED", "FAILED"} and st,
                        3600, every_s=15)  # fmt: skip
    parts = _parts(run_id)
    # what counts is each step's latest attempt (the one that redid it); the crashed attempt's objects stay in
    # the store as its record and are superseded, never counted (the scorer's dataset = limr select shows it)
    counted = {step: by[max(by)] for step, by in parts.items()}
    out["job"] = status
    out["seconds"] = round(time.monotonic() - t0, 1)
    out["steps_written"] = sorted(parts)
    out["attempts"] = sorted({a for by in parts.values() for a in by})
    out["parts_per_step_counted"] = sorted(set(counted.values()))
    out["superseded_parts"] = sum(n for by in parts.values() for a, n in by.items() if a != max(by))
    out["every_step_once"] = sorted(parts) == list(range(STEPS)) and len(set(counted.values())) == 1
    out["train_workers"] = c.train_workers()
    manifest = c.final_dataset(s, run_id, epochs=STEPS // 4)
    have = c.downloaded_ids(s, manifest["name"], Path(tempfile.mkdtemp()) / "got.jsonl")
    out["dataset_equals_limr_select"] = have == c.selected_ids(run_id) and bool(have)
    out["scorer_restarts"] = _restarts("limr-scorer")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
