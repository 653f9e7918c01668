"""S3/MinIO object store through the `minio` SDK.

Configuration comes from the environment so that the same URI (`s3://bucket/prefix`) works in a laptop
test, a Kubernetes pod (values injected from a Secret) and a Ray job:

- `LIMR_S3_ENDPOINT`: `http://host:port` or `https://host`; default `https://s3.amazonaws.com`.
  (`AWS_ENDPOINT_URL` / `MINIO_ENDPOINT` are accepted too.)
- `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (or `LIMR_S3_ACCESS_KEY` / `LIMR_S3_SECRET_KEY`),
  optional `AWS_SESSION_TOKEN`; each may instead name a file through `<NAME>_FILE` (limr.secrets: the chart
  mounts the keys as files).
- `LIMR_S3_REGION` (or `AWS_REGION`), optional.
"""

from __future__ import annotations

import io
import os
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar, cast
from urllib.parse import urlparse

from limr.secrets import env_secret
from limr.store.base import (
    AccessDenied,
    BucketNotFound,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
    StoreError,
    check_key,
    check_prefix,
)

T = TypeVar("T")

_TRANSIENT_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "OperationAborted"}
_DENIED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_MULTIPART_PART_SIZE = 16 * 1024 * 1024


def _env(*names: str, default: str | None = None) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


def _secret(*names: str) -> str | None:
    """The first of `names` set as a variable or as a `_FILE` (limr.secrets)."""
    return next((value for name in names if (value := env_secret(name))), None)


def _endpoint(endpoint: str | None = None) -> str:
    endpoint = endpoint or _env("LIMR_S3_ENDPOINT", "AWS_ENDPOINT_URL", "MINIO_ENDPOINT") or "https://s3.amazonaws.com"
    if "://" not in endpoint:
        endpoint = "http://" + endpoint
    if not urlparse(endpoint).netloc:
        raise StoreError(f"invalid S3 endpoint {endpoint!r} (LIMR_S3_ENDPOINT): expected http(s)://host:port")
    return endpoint


def arrow_filesystem(uri: str) -> tuple[Any, str]:
    """pyarrow's S3 filesystem for `s3://bucket/path`, configured exactly as S3Store (endpoint, keys from env or
    files), and the path in it: for libraries that take a pyarrow filesystem (Ray Train's storage), which would
    otherwise read only AWS_* variables and never the key files the chart mounts."""
    import pyarrow.fs as pafs

    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StoreError(f"invalid S3 URI {uri!r}: expected s3://bucket[/path]")
    endpoint = urlparse(_endpoint())
    fs = pafs.S3FileSystem(
        access_key=_secret("LIMR_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "MINIO_ACCESS_KEY"),
        secret_key=_secret("LIMR_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "MINIO_SECRET_KEY"),
        session_token=_secret("AWS_SESSION_TOKEN"),
        region=_env("LIMR_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION", default="us-east-1"),
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
    )
    return fs, f"{parsed.netloc}{parsed.path}".rstrip("/")


class S3Store(ObjectStore):
    """An S3 bucket (optionally under a key prefix). Transient failures are retried with jittered backoff."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        region: str | None = None,
        max_attempts: int = 5,
        backoff_s: float = 0.2,
    ) -> None:
        from minio import Minio

        endpoint = _endpoint(endpoint)
        parsed = urlparse(endpoint)
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._client = Minio(
            parsed.netloc,
            access_key=access_key or _secret("LIMR_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "MINIO_ACCESS_KEY"),
            secret_key=secret_key or _secret("LIMR_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "MINIO_SECRET_KEY"),
            session_token=session_token or _secret("AWS_SESSION_TOKEN"),
            secure=parsed.scheme == "https",
            region=region or _env("LIMR_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
        )

    # -- error mapping and retries ---------------------------------------------------------------
    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _call(self, what: str, fn: Callable[[], T], key: str | None = None) -> T:
        from minio.error import S3Error, ServerError
        from urllib3.exceptions import HTTPError as Urllib3Error

        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn()
            except S3Error as e:
                where = f"{self.uri}/{key}" if key else self.uri
                if e.code in ("NoSuchKey", "NoSuchObject"):
                    raise ObjectNotFound(f"{where}: no such object") from None
                if e.code == "PreconditionFailed":
                    raise PreconditionFailed(f"{what} {where}: the object exists") from None
                if e.code == "NoSuchBucket":
                    raise BucketNotFound(
                        f"bucket {self.bucket!r} does not exist at {self.endpoint} (create it first)"
                    ) from None
                if e.code in _DENIED_CODES:
                    raise AccessDenied(
                        f"{what} {where}: {e.code} - check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for {self.endpoint}"
                    ) from None
                if e.code not in _TRANSIENT_CODES or attempt == self.max_attempts:
                    raise StoreError(f"{what} {where}: {e.code}: {e.message}") from e
            except (ServerError, Urllib3Error, ConnectionError, TimeoutError) as e:
                if attempt == self.max_attempts:
                    raise StoreError(
                        f"{what} {self.uri}: {type(e).__name__}: {e} (gave up after {attempt} attempts)"
                    ) from e
            time.sleep(delay * (1 + random.random()))
            delay *= 2
        raise AssertionError("unreachable")

    # -- interface -------------------------------------------------------------------------------
    def check(self) -> None:
        """Fail fast with a clear error if the bucket is missing or credentials are wrong."""
        if not self._call("check bucket", lambda: self._client.bucket_exists(self.bucket)):
            raise BucketNotFound(f"bucket {self.bucket!r} does not exist at {self.endpoint} (create it first)")

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        full = self._full(key)
        self._call(
            "put",
            lambda: self._client.put_object(self.bucket, full, io.BytesIO(data), len(data), content_type=content_type),
            key,
        )

    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """A conditional PUT with `If-None-Match: *`: the server creates the object only if the key is free
        (AWS S3 since 2024-08, MinIO, SeaweedFS 4.48: tests/test_store.py races 16 writers on it).

        minio 7.2's public `put_object` cannot send the header (it turns unknown headers into user metadata),
        so this goes through its `_put_object`, which signs and sends the headers it is given. A PUT that
        succeeded on the server but whose answer was lost is retried and then meets its own object: one
        whose bytes equal ours counts as created (the caller's data is unique, or equal content is equal).
        """
        full = self._full(key)
        attempts = 0

        def put() -> None:
            nonlocal attempts
            attempts += 1
            headers: dict[str, str | list[str] | tuple[str]] = {"If-None-Match": "*", "Content-Type": content_type}
            self._client._put_object(self.bucket, full, data, headers=headers)

        try:
            self._call("put-if-absent", put, key)
            return True
        except PreconditionFailed:
            if attempts > 1:
                try:
                    return self.get(key) == data
                except ObjectNotFound:
                    return False
            return False

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
        full = self._full(key)
        self._call(
            "put",
            lambda: self._client.fput_object(
                self.bucket, full, path, content_type=content_type, part_size=_MULTIPART_PART_SIZE
            ),
            key,
        )

    def get(self, key: str) -> bytes:
        full = self._full(key)

        def read() -> bytes:
            resp = self._client.get_object(self.bucket, full)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return self._call("get", read, key)

    def open(self, key: str) -> BinaryIO:
        full = self._full(key)
        resp = self._call("get", lambda: self._client.get_object(self.bucket, full), key)
        return cast(BinaryIO, _ResponseReader(resp))  # a RawIOBase of bytes: what callers read

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        full_prefix = self.prefix + check_prefix(prefix)
        after = self.prefix + start_after if start_after is not None else None

        def page() -> list:
            return list(
                self._client.list_objects(self.bucket, prefix=full_prefix, recursive=True, start_after=after or "")
            )

        for obj in self._call("list", page):
            if obj.is_dir:
                continue
            key = obj.object_name[len(self.prefix) :]
            if start_after is not None and key <= start_after:
                continue  # some servers treat start-after loosely; the contract is strict
            modified = obj.last_modified.timestamp() if obj.last_modified else 0.0
            yield ObjectInfo(key=key, size=obj.size or 0, last_modified=modified)

    def exists(self, key: str) -> bool:
        full = self._full(key)
        try:
            self._call("stat", lambda: self._client.stat_object(self.bucket, full), key)
            return True
        except ObjectNotFound:  # minio maps a body-less 404 to HEAD to NoSuchKey; other errors are errors
            return False

    def delete(self, key: str) -> None:
        full = self._full(key)
        self._call("delete", lambda: self._client.remove_object(self.bucket, full), key)

    def close(self) -> None:
        self._client._http.clear()


class _ResponseReader(io.RawIOBase):
    """File-like wrapper that returns the urllib3 connection to the pool on close."""

    def __init__(self, resp) -> None:  # noqa: ANN001 - urllib3 response
        self._resp = resp

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # noqa: ANN001
        data = self._resp.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
            self._resp.release_conn()
        super().close()
