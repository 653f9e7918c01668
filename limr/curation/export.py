"""A curated dataset version in the trainer's own format (`limr datasets download --format verl|hf`).

A version's records are {prompt_id, prompt, answer, source, score}. Trainers read:

- verl: an RL parquet (`data.train_files`) with `data_source`, `prompt` (a chat: a list of {role, content}),
  `ability`, `reward_model` {style, ground_truth} and `extra_info` (volcengine/verl
  `examples/data_preprocess/gsm8k.py`; its `default_compute_score` dispatches on `data_source`, so the
  source a record came from is kept there, else the dataset's name);
- TRL (and anything built on `datasets`): a `save_to_disk` folder with `prompt`, `answer`, `prompt_id`
  (which `limr.integrations.trl` uses as the prompt id), `source` and `score`.

Both are written next to the target and renamed into place, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

EXPORT_FORMATS = ("verl", "hf")


class ExportError(ValueError):
    """Records that cannot be written in the asked format (the message names the record)."""


def verl_table(records: Sequence[dict[str, Any]], name: str, ability: str = "math") -> pa.Table:
    """verl's RL dataset rows for `records` (`name`: the data_source of records without a source)."""
    rows = []
    for i, r in enumerate(records):
        if not isinstance(r.get("prompt"), str):
            raise ExportError(f"record {i} ({r.get('prompt_id')!r}) has no prompt text; verl needs one")
        answer, score = ("" if r.get("answer") is None else str(r["answer"])), r.get("score")
        rows.append(
            {
                "data_source": r.get("source") or name,
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "ability": ability,
                "reward_model": {"style": "rule", "ground_truth": answer},
                "extra_info": {"split": "train", "index": i, "prompt_id": str(r["prompt_id"]), "score": score},
            }
        )
    return pa.Table.from_pylist(rows)


def write_verl(records: Sequence[dict[str, Any]], out: Path, name: str) -> Path:
    table = verl_table(records, name)
    tmp = out.with_name(f".{out.name}.part")
    try:
        pq.write_table(table, tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def write_hf(records: Sequence[dict[str, Any]], out: Path) -> Path:
    """A `datasets` folder (`Dataset.save_to_disk`); `out` must not exist yet."""
    import datasets  # type: ignore[import-untyped]

    if out.exists():
        raise ExportError(f"{out} exists; a Hugging Face dataset is a folder, give a new path")
    columns = ("prompt_id", "prompt", "answer", "source", "score")
    features = datasets.Features(
        {
            "prompt_id": datasets.Value("string"),
            "prompt": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "source": datasets.Value("string"),
            "score": datasets.Value("float64"),
        }
    )
    data = {c: [r.get(c) for r in records] for c in columns}
    ds = datasets.Dataset.from_dict(data, features=features)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        ds.save_to_disk(str(tmp / "ds"))
        (tmp / "ds").replace(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
