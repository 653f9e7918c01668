"""limr.atomic.atomic_file: the target appears whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from limr.atomic import atomic_file


def test_replaces_the_target_only_on_success_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.jsonl"
    with atomic_file(target) as f:
        f.write("first\n")
        assert not target.exists()  # readers never see a half-written file
    assert target.read_text() == "first\n"
    with pytest.raises(RuntimeError), atomic_file(target, "wb", fsync=True) as f:
        f.write(b"partial")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "first\n" and sorted(p.name for p in target.parent.iterdir()) == ["out.jsonl"]


def test_prefix_names_the_temp_file(tmp_path: Path) -> None:
    with atomic_file(tmp_path / "x", "wb", prefix=".limr-tmp-"):
        assert [p.name[:10] for p in tmp_path.iterdir()] == [".limr-tmp-"]
