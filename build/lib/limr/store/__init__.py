"""Object stores: `open_store(uri)` picks the backend from the URI.

- a plain path or `file:///abs/path`: local disk (the embedded default);
- `s3://bucket[/prefix]`: S3/MinIO (endpoint and credentials from the environment, see `limr.store.s3`).
With no URI, `LIMR_STORE` is used, else `./limr-data` (DEFAULT_STORE).
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from limr.store.base import (
    AccessDenied,
    BucketNotFound,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StoreError,
)
from limr.store.local import LocalStore

DEFAULT_STORE = "./limr-data"

__all__ = [
    "AccessDenied",
    "BucketNotFound",
    "DEFAULT_STORE",
    "InvalidKey",
    "LocalStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "StoreError",
    "default_store_uri",
    "open_store",
]


def default_store_uri() -> str:
    return os.environ.get("LIMR_STORE") or DEFAULT_STORE


def open_store(uri: str | None = None) -> ObjectStore:
    """Open the store named by `uri` (see module docstring)."""
    uri = uri or default_store_uri()
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        from limr.store.s3 import S3Store

        if not parsed.netloc:
            raise StoreError(f"invalid store URI {uri!r}: expected s3://bucket[/prefix]")
        return S3Store(parsed.netloc, parsed.path.lstrip("/"))
    if parsed.scheme == "file":
        return LocalStore(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:  # a Windows drive letter is not a scheme
        raise StoreError(f"unsupported store URI scheme {parsed.scheme!r} in {uri!r} (use a path, file:// or s3://)")
    return LocalStore(uri)
