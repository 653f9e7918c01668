"""limr.learner.launch.ensure_ray: a RayJob's driver joins its cluster; a local run starts a Ray sized for it."""

from __future__ import annotations

import ray

from limr.learner.config import LearnerConfig
from limr.learner.launch import ensure_ray


def _cfg() -> LearnerConfig:
    return LearnerConfig.model_validate({"name": "t", "model": {"actor": "/m"}, "trainer": {"num_workers": 2}})


def test_should_join_the_cluster_without_sizing_it_when_ray_address_is_set(monkeypatch):
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert ensure_ray(_cfg()) is False  # not ours to shut down
    assert calls == [{"log_to_driver": True}]  # num_cpus with an address is an error in Ray


def test_should_start_a_local_ray_with_room_for_workers_and_the_replica(monkeypatch):
    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert ensure_ray(_cfg()) is True
    assert calls == [{"address": "local", "num_cpus": 4, "include_dashboard": False}]  # 2 workers x 1 CPU + 2


def test_should_do_nothing_when_ray_is_up(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "init", lambda **kw: (_ for _ in ()).throw(AssertionError("init called")))
    assert ensure_ray(_cfg()) is False


def test_should_hand_the_workers_the_reader_token_file_early_lim_reads(monkeypatch, tmp_path):
    from limr.data.api_client import DatasetsClient
    from limr.learner.launch import _worker_env

    (tmp_path / "reader").write_text("file-token\n")
    monkeypatch.delenv("LIMR_READ_TOKEN", raising=False)
    monkeypatch.delenv("LIMR_API_TOKEN", raising=False)
    monkeypatch.delenv("LIMR_API_TOKEN_FILE", raising=False)
    monkeypatch.setenv("LIMR_READ_TOKEN_FILE", str(tmp_path / "reader"))  # what the chart mounts, not the token
    env = _worker_env()
    assert env["LIMR_READ_TOKEN_FILE"] == str(tmp_path / "reader") and "LIMR_READ_TOKEN" not in env
    monkeypatch.setattr("os.environ", env)  # a Ray Train worker sees only these (early_switch's client)
    import httpx

    seen = []
    transport = httpx.MockTransport(lambda r: seen.append(r.headers.get("Authorization")) or httpx.Response(200))
    with DatasetsClient("http://api:8080", transport=transport) as client:
        client.http.get("/v1/datasets")
    assert seen == ["Bearer file-token"]
