"""TensorBoard event files through tensorboardX (no TensorFlow): scalars per step, the config as text, the
LIM plots as images, in `DIR/{run id}/`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from limr.tracking.base import TrackerInfo, flatten, numeric


class TensorBoardTracker:
    def __init__(self, logdir: str, run_id: str, tags: dict[str, str]) -> None:
        from tensorboardX import SummaryWriter  # type: ignore[import-untyped]

        self.dir = Path(logdir) / run_id
        self.writer = SummaryWriter(logdir=str(self.dir), flush_secs=10)
        self.writer.add_text("limr/tags", json.dumps(tags), 0)
        self._step = 0
        self.info = TrackerInfo(backend="tensorboard", uri=str(Path(logdir).resolve()), run_id=run_id)

    def log_params(self, params: dict[str, Any]) -> None:
        flat = flatten(params)
        table = "\n".join(f"| {k} | {v} |" for k, v in sorted(flat.items()))
        self.writer.add_text("config", "| key | value |\n|---|---|\n" + table, 0)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in numeric(metrics).items():
            self.writer.add_scalar(key, value, step)
        self._step = max(self._step, step)

    def log_image(self, path: Path) -> None:
        import matplotlib.image as mpimg

        img = mpimg.imread(str(path))  # (H, W, C) floats in [0, 1]
        self.writer.add_image(f"plots/{path.stem}", img[..., :3], self._step, dataformats="HWC")

    def close(self, failed: bool = False) -> None:
        self.writer.add_text("limr/status", "failed" if failed else "finished", self._step)
        self.writer.close()
