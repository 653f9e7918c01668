"""Per-process caches of what never changes: a published version's manifest and (small) data files.

A version is immutable once its manifest exists (limr.curation.publish), so these entries never go stale and
need no invalidation. Listings of the whole store (every run, every dataset) change, and cost one paged LIST
of every key under runs/ or datasets/: `Listings` keeps them for at most `listing_ttl_s` seconds (bounded
staleness), and a publish through this process drops the datasets listing at once. A dataset's own versions
("latest", "final") are listed on every request, so a publisher always sees its own version.
Each cached version entry carries its ETag (the manifest's content hash, a file's sha256 from the manifest),
so clients revalidate with If-None-Match and get 304 without a body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache, TTLCache

from limr.curation.publish import data_key, list_datasets, read_manifest
from limr.events.run import list_runs
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


class Listings:
    """The store's run ids and datasets (name -> versions), each at most `ttl_s` seconds old (0: never cached).

    What a reader may miss within the window: a run or dataset created by another process (the scorer, the
    learner, another API replica), or a version they published; a run deleted meanwhile is still listed (the
    routes skip what they cannot read). A publish through this process invalidates the datasets listing.
    """

    def __init__(self, ttl_s: float, timer: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._cache: TTLCache[tuple[str, str], Any] | None = (
            TTLCache(maxsize=64, ttl=ttl_s, timer=timer) if ttl_s > 0 else None
        )
        self._lock = threading.Lock()

    def _get(self, store: ObjectStore, kind: str, load: Callable[[ObjectStore], Any]) -> Any:
        if self._cache is None:
            return load(store)
        key = (store.uri, kind)
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            hit = load(store)
            with self._lock:
                self._cache[key] = hit
        return hit

    def runs(self, store: ObjectStore) -> list[str]:
        """`limr.events.run.list_runs`, at most `ttl_s` old."""
        return list(self._get(store, "runs", list_runs))

    def datasets(self, store: ObjectStore) -> dict[str, list[int]]:
        """`limr.curation.publish.list_datasets`, at most `ttl_s` old."""
        return {name: list(vs) for name, vs in self._get(store, "datasets", list_datasets).items()}

    def published(self, store: ObjectStore) -> None:
        """A version was published through this process: the next datasets listing reads the store."""
        if self._cache is not None:
            with self._lock:
                self._cache.pop((store.uri, "datasets"), None)
