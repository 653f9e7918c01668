"""Per-process caches of what never changes: a published version's manifest and (small) data files.

A version is immutable once its manifest exists (limr.curation.publish), so these entries never go stale and
need no invalidation; only listings ("which versions exist", "latest") are read from the store on every
request. Each entry carries its ETag (the manifest's content hash, a file's sha256 from the manifest), so
clients revalidate with If-None-Match and get 304 without a body.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from limr.curation.publish import data_key, read_manifest
from limr.store import ObjectStore


@dataclass(frozen=True)
class Cached:
    body: bytes
    etag: str  # quoted, as in the ETag header


@dataclass(frozen=True)
class CachedManifest(Cached):
    manifest: dict[str, Any]


class VersionCache:
    """Manifests (all of them: a few KB each) and data files up to `max_file_bytes`, `max_bytes` in total."""

    def __init__(self, max_bytes: int = 256 << 20, max_file_bytes: int = 16 << 20) -> None:
        self.max_file_bytes = max_file_bytes
        self._manifests: LRUCache[tuple[str, str, int], CachedManifest] = LRUCache(maxsize=100_000)
        self._files: LRUCache[tuple[str, str, int, str], Cached] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda c: len(c.body)
        )
        self._lock = threading.Lock()

    def manifest(self, store: ObjectStore, name: str, version: int) -> CachedManifest:
        key = (store.uri, name, version)
        with self._lock:
            hit = self._manifests.get(key)
        if hit is None:
            manifest = read_manifest(store, name, version)
            body = json.dumps(manifest, separators=(",", ":")).encode()
            hit = CachedManifest(body, f'"{manifest.get("content_hash") or version}"', manifest)
            with self._lock:
                self._manifests[key] = hit
        return hit

    def read_manifest(self, store: ObjectStore, name: str, version: int) -> dict[str, Any]:
        """`limr.curation.publish.read_manifest`, from the cache."""
        return self.manifest(store, name, version).manifest

    def file(self, store: ObjectStore, name: str, version: int, fmt: str) -> Cached | None:
        """The data file's bytes, or None when it is too large to cache (stream it instead)."""
        manifest = self.manifest(store, name, version).manifest
        info = manifest.get("files", {}).get("data.parquet" if fmt == "parquet" else "data.jsonl", {})
        size = info.get("bytes")
        if size is None or size > self.max_file_bytes:
            return None
        key = (store.uri, name, version, fmt)
        with self._lock:
            hit = self._files.get(key)
        if hit is None:
            hit = Cached(store.get(data_key(name, version, fmt)), f'"{info.get("sha256", "")}"')
            with self._lock:
                self._files[key] = hit
        return hit
