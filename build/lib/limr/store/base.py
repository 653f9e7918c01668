"""The object-store interface every limr component writes through.

Deliberately small (put/get/list/exists/delete plus streaming reads) so that local disk and any
S3-compatible server behave the same. Keys are '/'-separated relative paths; listing is in
lexicographic key order, which is what makes `start_after` cursors work on every backend.
"""

from __future__ import annotations

import abc
import builtins  # `list` in the class body is ObjectStore.list
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO


class StoreError(Exception):
    """Base class of object-store failures."""


class ObjectNotFound(StoreError, KeyError):
    """The key does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "object not found"


class BucketNotFound(StoreError):
    """The configured bucket does not exist."""


class AccessDenied(StoreError):
    """Credentials were rejected or lack permission."""


class InvalidKey(StoreError, ValueError):
    """A key that could escape the store root or is otherwise unusable."""


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object."""

    key: str
    size: int
    last_modified: float  # unix seconds


def check_key(key: str) -> str:
    """Reject keys that would escape the root or behave differently across backends."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise InvalidKey(f"invalid object key {key!r}: must be a non-empty relative path")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidKey(f"invalid object key {key!r}: empty, '.' or '..' path segment")
    return key


class ObjectStore(abc.ABC):
    """Backend-neutral object store. Writes of one key are atomic: readers see old or new bytes, never a mix."""

    uri: str

    @abc.abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write `data` under `key`, replacing any existing object atomically."""

    @abc.abstractmethod
    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
        """Upload a local file (streamed; multipart on S3 for large files)."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """Read a whole object; raises ObjectNotFound."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Streaming read of an object; the caller closes the returned file object."""

    @abc.abstractmethod
    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix` and sorts strictly after `start_after`, in key order."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """True when the object exists."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; deleting a missing key is not an error."""

    def get_to_file(self, key: str, path: str) -> None:
        """Download an object to a local path, streaming."""
        import shutil

        with self.open(key) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Write unless the key exists; returns whether it wrote. Used for immutable objects.

        Not a cross-process compare-and-swap on every backend; callers that race must tolerate the
        other writer's identical content (limr's immutable objects are content-determined).
        """
        if self.exists(key):
            return False
        self.put(key, data, content_type)
        return True

    def list_keys(self, prefix: str = "", start_after: str | None = None) -> builtins.list[str]:
        return [o.key for o in self.list(prefix, start_after)]

    def close(self) -> None:  # noqa: B027 - optional hook: local disk holds nothing to release
        """Release resources (connection pools)."""
