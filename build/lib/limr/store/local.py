"""Local-disk object store: the embedded default. Atomic writes via temp file + rename."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from limr.atomic import atomic_file
from limr.store.base import ObjectInfo, ObjectNotFound, ObjectStore, check_key

_TMP_PREFIX = ".limr-tmp-"


class LocalStore(ObjectStore):
    """Objects are files under `root`; a key maps to the relative path of the same name."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.uri = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        with atomic_file(self._path(key), "wb", prefix=_TMP_PREFIX, fsync=True) as f:
            f.write(data)

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
        import shutil

        with atomic_file(self._path(key), "wb", prefix=_TMP_PREFIX, fsync=True) as out, open(path, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"{self.uri}/{key}: no such object") from None

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")  # noqa: SIM115 - caller closes
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"{self.uri}/{key}: no such object") from None

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        # Walk only the directory that can hold the prefix, then sort: S3 lists in key order.
        base_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        top = self.root / base_dir if base_dir else self.root
        if not top.is_dir():
            return
        found: list[tuple[str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(_TMP_PREFIX)]
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if name.startswith(_TMP_PREFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                if key.startswith(prefix) and (start_after is None or key > start_after):
                    found.append((key, Path(dirpath) / name))
        found.sort(key=lambda kv: kv[0])
        for key, path in found:
            try:
                st = path.stat()
            except FileNotFoundError:  # deleted while listing
                continue
            yield ObjectInfo(key=key, size=st.st_size, last_modified=st.st_mtime)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
