"""Ray Train's run state is keyed by store and run, and a fresh run never inherits an earlier run's state."""

from __future__ import annotations

from limr.learner.config import LearnerConfig
from limr.learner.launch import _clear_ray_run_state, ray_run_name


def _cfg(store: str, run_id: str = "x") -> LearnerConfig:
    return LearnerConfig.model_validate({"model": {"actor": "m"}, "run": {"run_id": run_id, "store": store}})


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
    _clear_ray_run_state(str(tmp_path), "x-0123456789ab")
    assert not (tmp_path / "x-0123456789ab").exists() and other.exists()
    _clear_ray_run_state(str(tmp_path), "absent")  # nothing there: nothing to do
