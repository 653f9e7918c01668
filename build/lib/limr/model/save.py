"""Write a model directory atomically: readers (vLLM, the learner, a resumed run) never see half a model."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def save_model_dir(out: Path, model: Any, tokenizer: Any, meta_name: str, meta: dict[str, Any]) -> Path:
    """Save a HF model + tokenizer + a limr metadata JSON into a temporary sibling, then rename it to `out`.

    `out` must be absent or an empty directory (callers check that up front, before spending minutes).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / meta_name).write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
