"""One way to write a file so that readers never see part of it: a temp file beside it, renamed over it.

The rename is atomic on POSIX within one directory, so the temp file lives next to the target; on any error
(or Ctrl-C) the temp file is removed and the target is left as it was. Imports nothing from limr, so every
layer (the local object store included) can use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_file(
    path: str | os.PathLike[str], mode: str = "w", *, prefix: str | None = None, fsync: bool = False
) -> Iterator[IO[Any]]:
    """Open a temp file for writing (`mode` "w" text UTF-8 or "wb"); on success it replaces `path`.

    `prefix` names the temp file (default `.NAME.`; listings that must skip temp files use their own);
    `fsync` makes the data durable before the rename (stores; not needed for outputs a command can rewrite).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
