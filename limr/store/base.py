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


class PreconditionFailed(StoreError):
    """A conditional write found the object already there."""


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
    if "\x00" in key:
        raise InvalidKey(f"invalid object key {key!r}: NUL character")
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key's beginning that cannot leave the root ('..', '.', '/', NUL)."""
    if not prefix:
        return prefix
    if prefix.startswith("/") or "\x00" in prefix:
        raise InvalidKey(f"invalid listing prefix {prefix!r}: must be relative, without NUL")
    if any(p in (".", "..") for p in prefix.split("/")) or "//" in prefix:
        raise InvalidKey(f"invalid listing prefix {prefix!r}: empty, '.' or '..' path segment")
    return prefix


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

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Create `key` with `data` unless it exists; returns whether this call created it.

        Atomic across processes and machines: of any number of concurrent callers exactly one gets True
        (an exclusive create on local disk; S3's conditional `If-None-Match: *` PUT). Readers never see a
        partial object. Version numbers of datasets rest on this (limr.curation.publish).
        """

    def list_keys(self, prefix: str = "", start_after: str | None = None) -> builtins.list[str]:
        return [o.key for o in self.list(prefix, start_after)]

    def close(self) -> None:  # noqa: B027 - optional hook: local disk holds nothing to release
        """Release resources (connection pools)."""
