"""Chaos: every fault of the hardening round at once, on one S3 store.

Two `limr serve datasets` processes publish the scorer's dataset again and again while the scorer publishes it
too; the learner crashes and resumes on fewer ranks (attempt-numbered event keys and a resume record, what
limr.learner writes); the scorer is SIGKILLed in the middle of that resume and started again; the S3 server is
SIGKILLed while the resumed learner writes and comes back. At the end nothing is lost and nothing is counted twice
(the scorer's counts equal `count_run` over the events that count), the final dataset is what `limr select` gives
on the events, and the dataset's version numbers are unique, consecutive and whole.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from limr.cli.main import app
from limr.curation.publish import list_versions, read_manifest
from limr.curation.state import load_checkpoint
from limr.events.attempts import read_attempts, record_resume
from limr.events.io import list_event_keys
from limr.scoring import count_run
from limr.store import open_store
from tests.services.conftest import RunWriter, Service, service_env
from tests.support.s3server import start_s3_server

pytestmark = pytest.mark.slow
TOKEN = "chaos-token"
RUN, DATASET, THRESHOLD = "chaos", "chaos-lim", 0.4
EPOCHS, STEPS_PER_EPOCH, CRASH_AFTER, RESUME_AT = 2, 4, 6, 4  # attempt 0 writes steps 0-5 (2 ranks), resumes at 4


class Publishers:
    """Threads POSTing distinct selections of the run to both APIs until stopped; a failed POST (the S3 server is
    down, the run mid-resume) is retried with the same body, as a client would."""

    def __init__(self, urls: list[str], threads: int = 4) -> None:
        self.urls, self.stop = urls, threading.Event()
        self.answers: list[tuple[int, int]] = []  # (status, version) of each successful publish
        self.failed = 0
        self._k = iter(range(1, 10**6))
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def _loop(self) -> None:
        while not self.stop.is_set():
            with self._lock:
                k = next(self._k)
            body = {"run": RUN, "strategy": "lim", "top_k": 1 + k % 20}
            while not self.stop.is_set():
                try:
                    r = httpx.post(f"{self.urls[k % 2]}/v1/datasets/{DATASET}/versions", json=body,
                                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)  # fmt: skip
                except httpx.HTTPError:
                    r = None
                if r is not None and r.status_code in (200, 201):
                    with self._lock:
                        self.answers.append((r.status_code, r.json()["version"]))
                    break
                with self._lock:
                    self.failed += 1
                time.sleep(0.2)
            time.sleep(0.1)

    def __enter__(self) -> Publishers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(90)


def _scorer_objects(store) -> int:
    try:
        return json.loads(store.get(f"scorer/status/{RUN}.json"))["objects"]
    except Exception:  # noqa: BLE001 - not written yet, or the S3 server is down right now
        return -1


def _wait(what: str, cond, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def test_publishers_a_scorer_kill_mid_resume_and_an_s3_restart_lose_and_double_nothing(tmp_path: Path, monkeypatch):
    t_start = time.monotonic()
    server = start_s3_server()
    services: list[Service] = []
    try:
        uri = f"s3://{server.make_bucket('chaos')}/limr"
        env = service_env({**server.env(), "LIMR_API_TOKEN": TOKEN})
        for k, v in server.env().items():  # this process's store (the learner, the checks)
            monkeypatch.setenv(k, v)
        store = open_store(uri)
        w = RunWriter(store, RUN, prompts=24, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, seed=7)
        w.start()
        steps = list(w.steps())
        for epoch, step in steps[:CRASH_AFTER]:  # attempt 0 on two ranks, killed after step 5's events
            w.write_step(epoch, step, 0)
            w.write_step(epoch, step, 1)

        policy = ["--policy", f"name={DATASET},threshold={THRESHOLD}", "--poll-interval", "0.05",
                  "--checkpoint-every", "2", "--checkpoint-min-interval", "0"]  # fmt: skip
        scorer = Service(["scorer", "--store", uri, *policy], env, tmp_path / "scorer.log")
        apis = [Service(["datasets", "--store", uri], env, tmp_path / f"api{i}.log") for i in range(2)]
        services += [scorer, *apis]
        for s in services:
            s.wait_ready(timeout_s=120)
        _wait("the scorer counts attempt 0", lambda: _scorer_objects(store) == 2 * CRASH_AFTER, 60)

        with Publishers([a.url for a in apis]) as pubs:
            _wait("publishes under way", lambda: len(pubs.answers) >= 4, 60)
            # the learner resumes from its step-4 checkpoint on one rank: record first, then attempt 1's events
            w.attempt = record_resume(store, RUN, from_step=RESUME_AT, workers=1)
            w.rng = np.random.default_rng(99)  # different rollouts this time
            resumed = steps[RESUME_AT:]
            w.write_step(*resumed[0])
            _wait("the scorer sees the resume", lambda: _scorer_objects(store) != 2 * CRASH_AFTER, 30)
            scorer.kill()  # SIGKILL the scorer in the middle of the resume
            w.write_step(*resumed[1])
            server.kill()  # the S3 server dies while the learner writes; it is back 4 s later
            back = threading.Timer(4.0, server.restart)
            back.start()
            t_down = time.monotonic()
            w.write_step(*resumed[2])  # rides the outage out (limr.store.s3 retries)
            outage_write_s = time.monotonic() - t_down
            back.join()
            scorer = Service(["scorer", "--store", uri, *policy], env, tmp_path / "scorer.log")
            services.append(scorer)
            scorer.wait_ready(timeout_s=120)
            w.write_step(*resumed[3])
            w.finish()
            effective = list(list_event_keys(store, RUN))
            _wait("the final version", lambda: _final_counted(store, len(effective)), 120)
            time.sleep(1.0)  # a few more publishes after the final one
    finally:
        for s in services:
            s.stop()

    try:
        # nothing lost, nothing counted twice
        assert read_attempts(store, RUN).latest == 1
        assert len(effective) == 2 * RESUME_AT + len(steps) - RESUME_AT  # steps 0-3 on 2 ranks, 4-7 on 1
        reference = count_run(store, RUN).counts
        assert int(reference.total.sum()) == len(effective) * 6 * 4  # 6 prompts x 4 samples per object
        state = load_checkpoint(store, "scorer", RUN)
        assert state.attempt == 1 and state.ingested == set(effective) and not state.quarantined
        assert state.counts.to_bytes() == reference.to_bytes()

        # version numbers unique, consecutive and whole, whoever published them
        versions = list_versions(store, DATASET)
        manifests = {v: read_manifest(store, DATASET, v) for v in versions}
        created = [v for status, v in pubs.answers if status == 201]
        assert versions == list(range(1, len(versions) + 1))
        assert len(created) == len(set(created)) and set(created) <= set(versions)
        assert len({m["content_hash"] for m in manifests.values()}) == len(versions)
        for v, m in manifests.items():
            assert m["version"] == v
            for fname, info in m["files"].items():
                assert hashlib.sha256(store.get(f"datasets/{DATASET}/v{v}/{fname}")).hexdigest() == info["sha256"]
        assert not [k for k in store.list_keys(f"datasets/{DATASET}/") if k.endswith("/_claim")]
        # the final dataset is `limr select` on the events
        # (the scorer's final version: an API publish of a finished run is final too, with its own selection)
        final = manifests[max(v for v, m in manifests.items() if m.get("publisher") == "scorer" and m["final"])]
        got = [
            json.loads(line)["prompt_id"]
            for line in store.get(f"datasets/{DATASET}/v{final['version']}/data.jsonl").splitlines()
        ]  # noqa: E501
        pool = tmp_path / "pool.jsonl"
        pool.write_text("".join(json.dumps({"id": r.prompt_id, "prompt": r.prompt, "answer": r.answer}) + "\n"
                                for r in w.records()))  # fmt: skip
        out = tmp_path / "select.jsonl"
        res = CliRunner().invoke(app, ["select", "--run", RUN, "--store", uri, "--prompts", str(pool), "--out",
                                       str(out), "--strategy", "lim", "--threshold", str(THRESHOLD)])  # fmt: skip
        assert res.exit_code == 0, res.output
        assert got == [json.loads(line)["id"] for line in out.read_text().splitlines()] and got

        publishers = {m.get("publisher") for m in manifests.values()}
        assert {"scorer"} < publishers  # both the scorer and the APIs published
        print(json.dumps({"chaos": {"versions": len(versions), "api_publishes": len(pubs.answers),
                                    "api_created": len(created), "api_retries": pubs.failed,
                                    "scorer_versions": sum(m.get("publisher") == "scorer" for m in manifests.values()),
                                    "events_counted": len(effective), "outage_write_s": round(outage_write_s, 1),
                                    "seconds": round(time.monotonic() - t_start, 1)}}))  # fmt: skip
    finally:
        server.stop()


def _final_counted(store, objects: int) -> bool:
    """The scorer has counted every object that counts and published its final version (an API publish of a
    finished run is final too, so the publisher is checked)."""
    try:
        if _scorer_objects(store) != objects:
            return False
        manifests = [read_manifest(store, DATASET, v) for v in list_versions(store, DATASET)]
        return any(m.get("publisher") == "scorer" and m["final"] for m in manifests)
    except Exception:  # noqa: BLE001 - mid-write
        return False
