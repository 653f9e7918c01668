"""Prompt pools read from the curated-dataset API (`limr serve datasets`) by name and version.

`dataset://NAME@VERSION` (VERSION a number or `latest`) resolves against the API's base URL; a full URL of a
version's data (`http://host:8080/v1/datasets/NAME/versions/3/data`) is read as it is. Training on a curated
subset then needs no copy by hand and no access to the store: the API is the one reader of published
versions, in the cluster as on a laptop. Published records carry the id the source run used as
`prompt_id`; it becomes the record's `id`, so a run on the subset writes events under the same prompt ids.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from limr.data.api_client import DatasetsClient
from limr.jsonl import JsonlError, jsonl_records

SCHEME = "dataset://"
_REF_RE = re.compile(r"^dataset://(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,127})(?:@(?P<version>latest|[1-9]\d{0,8}))?$")


class DatasetRefError(ValueError):
    """A dataset reference that does not parse, or a version with bad records; the message names it. (A failed
    fetch raises limr.data.api_client.DatasetAPIError.)"""


@dataclass(frozen=True)
class DatasetRef:
    name: str
    version: str  # a version number or "latest"

    def __str__(self) -> str:
        return f"{SCHEME}{self.name}@{self.version}"


def is_api_pool(path: object) -> bool:
    """True for prompt pools read through the dataset API (dataset:// references and http(s) URLs)."""
    return isinstance(path, str) and path.startswith((SCHEME, "http://", "https://"))


def parse_ref(uri: str) -> DatasetRef:
    m = _REF_RE.match(uri)
    if m is None:
        raise DatasetRefError(f"{uri!r}: expected dataset://NAME@VERSION (VERSION: a number or 'latest')")
    return DatasetRef(m["name"], m["version"] or "latest")


def _client(base_url: str | None) -> DatasetsClient:
    return DatasetsClient(base_url)


def pin(uri: str, base_url: str | None = None) -> str:
    """`dataset://NAME@latest` -> `dataset://NAME@N` (the newest version now), so every rank and a resumed
    run read the same version. Numbered references and URLs are returned unchanged."""
    if not uri.startswith(SCHEME):
        return uri
    ref = parse_ref(uri)
    if ref.version != "latest":
        return str(ref)
    with _client(base_url) as client:
        versions = client.versions(ref.name)
    if not versions:
        raise DatasetRefError(f"{uri}: the dataset has no version yet")
    return str(DatasetRef(ref.name, str(versions[-1])))


def fetch_records(uri: str, base_url: str | None = None) -> list[dict]:
    """The version's records (JSONL from the API), each with `id` set from its `prompt_id`."""
    with _client(base_url) as client:
        if uri.startswith(SCHEME):
            ref = parse_ref(uri)
            text = client.data(ref.name, ref.version, what=uri)
        else:  # a full URL: the token goes with it only if it is the configured API's (limr.data.api_client)
            text = client.call("GET", uri, what=uri).text
    records = []
    try:
        for _, rec in jsonl_records(text.splitlines(), uri):
            if rec.get("prompt_id") and not rec.get("id"):
                rec["id"] = rec["prompt_id"]
            records.append(rec)
    except JsonlError as e:
        raise DatasetRefError(str(e)) from None
    if not records:
        raise DatasetRefError(f"{uri}: the dataset version has no records")
    return records


def fetch_to_file(uri: str, directory: str | Path, base_url: str | None = None) -> Path:
    """Write the version's records as JSONL under `directory` (for `limr.data.pool.load_pool`)."""
    records = fetch_records(uri, base_url)
    fd, tmp = tempfile.mkstemp(prefix="pool-", suffix=".jsonl", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return Path(tmp)
