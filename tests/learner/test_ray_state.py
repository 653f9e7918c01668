"""Ray Train's run state is keyed by store and run, and a fresh run never inherits an earlier run's state."""

from __future__ import annotations

from limr.learner.config import LearnerConfig
from limr.learner.launch import _clear_ray_run_state, ray_run_name, ray_storage
from limr.store import open_store


def _cfg(store: str, run_id: str = "x", ray_storage_path: str | None = None) -> LearnerConfig:
    return LearnerConfig.model_validate({"model": {"actor": "m"}, "run": {"run_id": run_id, "store": store},
                                         "trainer": {"ray_storage_path": ray_storage_path}})  # fmt: skip


def test_run_name_differs_per_store_and_run() -> None:
    names = {ray_run_name(_cfg(s, r)) for s in ("/a", "/b", "s3://bkt/p") for r in ("x", "y")}
    assert len(names) == 6 and all(n.startswith(("x-", "y-")) for n in names)
    assert ray_run_name(_cfg("/a")) == ray_run_name(_cfg("/a"))


def test_stale_state_is_removed_before_a_fresh_run(tmp_path) -> None:
    stale = tmp_path / "x-0123456789ab" / "checkpoint_000001"
    stale.mkdir(parents=True)
    (stale / "limr_checkpoint.json").write_text('{"key": "runs/x/checkpoints/0000000002/state.pt"}')
    other = tmp_path / "x-ba9876543210"
    other.mkdir()
    _clear_ray_run_state(str(tmp_path), None, "x-0123456789ab")
    assert not (tmp_path / "x-0123456789ab").exists() and other.exists()
    _clear_ray_run_state(str(tmp_path), None, "absent")  # nothing there: nothing to do


def test_store_storage_lives_under_the_run_in_a_local_store(tmp_path) -> None:
    path, fs = ray_storage(_cfg(str(tmp_path), "r1", "store"))
    assert fs is None and path == f"{tmp_path}/runs/r1/ray-train"
    assert ray_storage(_cfg(str(tmp_path), "r1", "/shared/ray")) == ("/shared/ray", None)


def test_store_storage_on_s3_is_shared_through_the_stores_endpoint_and_key_files(
    s3_uri, s3_server, tmp_path, monkeypatch
) -> None:
    # The chart mounts the keys as files: Ray Train's pyarrow filesystem must use them (pyarrow reads only AWS_*).
    for name, value in (("ACCESS", s3_server.access_key), ("SECRET", s3_server.secret_key)):
        (tmp_path / name).write_text(value)
        monkeypatch.setenv(f"LIMR_S3_{name}_KEY_FILE", str(tmp_path / name))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    cfg = _cfg(s3_uri, "r1", "store")
    path, fs = ray_storage(cfg)
    assert path == f"{s3_uri.removeprefix('s3://')}/runs/r1/ray-train"
    with fs.open_output_stream(f"{path}/{ray_run_name(cfg)}/checkpoint_000000/limr.json") as f:
        f.write(b"{}")
    keys = list(open_store(s3_uri).list_keys("runs/r1/"))
    assert keys == [f"runs/r1/ray-train/{ray_run_name(cfg)}/checkpoint_000000/limr.json"]
    _clear_ray_run_state(path, fs, ray_run_name(cfg))  # a fresh run of this id removes it again
    assert not list(open_store(s3_uri).list_keys("runs/r1/"))
