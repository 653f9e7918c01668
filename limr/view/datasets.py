"""Dataset versions as the web view and the diff route show them: manifests, records, differences."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from limr.curation.publish import data_key, list_datasets, version_status
from limr.store import ObjectStore

ReadManifest = Callable[[ObjectStore, str, int], dict[str, Any]]


@dataclass
class VersionRow:
    name: str
    version: int
    status: str  # provisional, interim or final (limr.curation.publish.version_status)
    manifest: dict[str, Any]
    count: int = 0  # versions the dataset has (set by datasets_overview)

    @property
    def run(self) -> str | None:
        return self.manifest.get("run")

    @property
    def selected(self) -> int | None:
        return (self.manifest.get("counts") or {}).get("selected")


def version_rows(store: ObjectStore, name: str, versions: list[int], read: ReadManifest) -> list[VersionRow]:
    """Every version of a dataset, oldest first."""
    rows = []
    for v in versions:
        m = read(store, name, v)
        rows.append(VersionRow(name, v, version_status(m), m))
    return rows


def datasets_overview(
    store: ObjectStore, read: ReadManifest, found: dict[str, list[int]] | None = None
) -> list[VersionRow]:
    """The latest version of every dataset, with how many it has (one manifest read each; a caching reader
    makes repeats free). `found`: a `list_datasets` result the caller already holds."""
    rows = []
    for name, versions in (list_datasets(store) if found is None else found).items():
        row = version_rows(store, name, [versions[-1]], read)[0]
        row.count = len(versions)
        rows.append(row)
    return rows


def datasets_of_run(store: ObjectStore, run_id: str, read: ReadManifest) -> list[VersionRow]:
    """The newest version of each dataset published from `run_id` (its manifests name the run)."""
    out = []
    for name, versions in list_datasets(store).items():
        for row in reversed(version_rows(store, name, versions, read)):
            if row.run == run_id:
                out.append(row)
                break
    return out


def version_records(store: ObjectStore, name: str, version: int, columns: list[str] | None = None) -> list[dict]:
    """The version's selected records (prompt_id, prompt, answer, source, score), in pool order."""
    table = pq.read_table(io.BytesIO(store.get(data_key(name, version, "parquet"))), columns=columns)
    return table.to_pylist()


@dataclass
class VersionDiff:
    added: list[dict[str, Any]]  # records of version B not in A, sorted by prompt id
    removed: list[dict[str, Any]]  # records of A not in B
    kept: int


def diff_versions(store: ObjectStore, name: str, a: int, b: int, columns: list[str] | None = None) -> VersionDiff:
    """What changed from version `a` to version `b`: prompts added and removed (with `columns` of each)."""
    cols = None if columns is None else sorted({"prompt_id", *columns})
    ra = {r["prompt_id"]: r for r in version_records(store, name, a, cols)}
    rb = {r["prompt_id"]: r for r in version_records(store, name, b, cols)}
    return VersionDiff(
        added=[rb[k] for k in sorted(rb.keys() - ra.keys())],
        removed=[ra[k] for k in sorted(ra.keys() - rb.keys())],
        kept=len(ra.keys() & rb.keys()),
    )
