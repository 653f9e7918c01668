"""No code execution from the store: extra.pt loads weights_only, and DCP's pickled index is verified first."""

from __future__ import annotations

import io
import pickle

import pytest
import torch

from limr.learner.checkpoint import CheckpointIntegrityError, load_tensors, read_extra, read_full, save_checkpoint
from limr.learner.dist import DistCtx
from limr.store import LocalStore


class _Exploit:
    def __reduce__(self):  # noqa: ANN204 - what a hostile pickle does: call a function on load
        return (print, ("pwned",))


def _saved(tmp_path, steps=(1,)):  # noqa: ANN202
    store = LocalStore(tmp_path / "s")
    keys = [
        save_checkpoint(store, "r", s, {"w": torch.arange(4.0) * s}, {"loop": {"step": s}}, DistCtx()) for s in steps
    ]
    return store, keys


def test_a_pickle_in_extra_is_refused_not_run(tmp_path, capsys):
    store, (key,) = _saved(tmp_path)
    assert read_extra(store, key) == {"loop": {"step": 1}}
    buf = io.BytesIO()
    torch.save({"loop": _Exploit()}, buf)
    store.put(key + "extra.pt", buf.getvalue())
    with pytest.raises(pickle.UnpicklingError):
        read_extra(store, key)
    assert "pwned" not in capsys.readouterr().out


def test_the_dcp_index_is_verified_before_it_is_unpickled(tmp_path, capsys):
    store, keys = _saved(tmp_path, steps=(1, 2))
    into = {"w": torch.zeros(4)}
    load_tensors(store, keys[1], into)
    assert into["w"].tolist() == [0.0, 2.0, 4.0, 6.0]
    with pytest.raises(CheckpointIntegrityError, match="not the run's latest checkpoint"):
        load_tensors(store, keys[0], into)  # latest.json is the one truth of where a run resumes
    store.put(keys[1] + ".metadata", pickle.dumps(_Exploit()))
    with pytest.raises(CheckpointIntegrityError, match="sha256 differs"):
        read_full(store, keys[1])
    assert "pwned" not in capsys.readouterr().out
