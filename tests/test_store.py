"""Object-store contract, run against both backends: local disk and a real S3 server."""

from __future__ import annotations

import os
import threading

import pytest

from limr.store import AccessDenied, BucketNotFound, InvalidKey, ObjectNotFound, StoreError, open_store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path):
    if request.param == "local":
        return open_store(str(tmp_path / "store"))
    return open_store(request.getfixturevalue("s3_uri"))


def test_roundtrip_and_listing(store) -> None:
    store.put("runs/r1/events/0000000001-0000.parquet", b"a")
    store.put("runs/r1/events/0000000000-0000.parquet", b"bb")
    store.put("runs/r1/run.json", b"{}")
    store.put("runs/r2/run.json", b"{}")
    assert store.get("runs/r1/events/0000000000-0000.parquet") == b"bb"
    keys = store.list_keys("runs/r1/events/")
    assert keys == ["runs/r1/events/0000000000-0000.parquet", "runs/r1/events/0000000001-0000.parquet"]
    assert store.list_keys("runs/r1/events/", start_after=keys[0]) == keys[1:]
    assert store.list_keys("runs/", start_after="runs/r1/run.json") == ["runs/r2/run.json"]
    assert [o.size for o in store.list("runs/r1/events/")] == [2, 1]
    assert store.list_keys("runs/r1/ev") == keys  # prefix need not end at a '/'
    assert store.list_keys("nothing/") == []


def test_overwrite_exists_delete_and_missing(store) -> None:
    store.put("a/b", b"1")
    store.put("a/b", b"2")
    assert store.get("a/b") == b"2"
    assert store.exists("a/b") and not store.exists("a/c")
    store.delete("a/b")
    store.delete("a/b")  # idempotent
    assert not store.exists("a/b")
    with pytest.raises(ObjectNotFound):
        store.get("a/b")
    with pytest.raises(ObjectNotFound):
        store.open("a/b")


def test_streaming_read_and_large_file(store, tmp_path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "big.bin"
    src.write_bytes(payload)
    store.put_file("blobs/big.bin", str(src))
    with store.open("blobs/big.bin") as f:
        first = f.read(1000)
        rest = f.read()
    assert first + rest == payload
    dest = tmp_path / "back.bin"
    store.get_to_file("blobs/big.bin", str(dest))
    assert dest.read_bytes() == payload


def test_put_if_absent(store) -> None:
    assert store.put_if_absent("x/y", b"1")
    assert not store.put_if_absent("x/y", b"2")
    assert store.get("x/y") == b"1"


def test_put_if_absent_has_exactly_one_winner_among_racing_writers(store) -> None:
    """The store's conditional create (exclusive link on disk, `If-None-Match: *` on S3) is the lock that
    dataset version numbers rest on: of 16 simultaneous writers of one key exactly one wins, every time."""
    from concurrent.futures import ThreadPoolExecutor

    for round_ in range(5):
        barrier = threading.Barrier(16)

        def write(i: int, r: int = round_, barrier: threading.Barrier = barrier) -> bool:
            barrier.wait()
            return store.put_if_absent(f"race/{r}", f"writer {i}".encode())

        with ThreadPoolExecutor(16) as pool:
            won = list(pool.map(write, range(16)))
        assert won.count(True) == 1
        assert store.get(f"race/{round_}") == f"writer {won.index(True)}".encode()
    assert [k for k in store.list_keys("race/")] == [f"race/{r}" for r in range(5)]  # no temp files left


@pytest.mark.parametrize("prefix", ["../", "a/../../", "/etc", "x\x00"])
def test_listing_prefixes_outside_the_root_are_refused(store, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        list(store.list(prefix))


def test_exists_reports_errors_that_are_not_missing_objects(s3_uri, monkeypatch) -> None:
    from limr.store import StoreError

    store = open_store(s3_uri)
    store.put("k", b"1")
    assert store.exists("k") and not store.exists("nope")

    def fail():  # noqa: ANN202
        raise StoreError("stat k: InternalError: disk 404 offline")  # "404" in the text, not a missing object

    monkeypatch.setattr(store, "_call", lambda what, fn, key=None: fail())
    with pytest.raises(StoreError, match="disk 404"):
        store.exists("k")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "dir/", "nul\x00byte"])
def test_bad_keys_rejected(store, key: str) -> None:
    with pytest.raises(InvalidKey):
        store.put(key, b"x")


def test_local_store_writes_are_atomic(tmp_path) -> None:
    store = open_store(f"file://{tmp_path}")
    store.put("k", b"old")
    store.put("k", b"new")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "k"]
    assert leftovers == []  # temp files renamed away, never left behind or listed
    assert store.list_keys() == ["k"]


def test_s3_missing_bucket_and_bad_credentials(s3_env, monkeypatch) -> None:
    with pytest.raises(BucketNotFound, match="does not exist"):
        open_store("s3://no-such-bucket-limr").put("k", b"x")
    bucket = s3_env.make_bucket("creds-check")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with pytest.raises(AccessDenied, match="AWS_SECRET_ACCESS_KEY"):
        open_store(f"s3://{bucket}").put("k", b"x")


def test_s3_reads_the_keys_from_files_when_mounted_as_secrets(s3_env, monkeypatch, tmp_path) -> None:
    bucket = s3_env.make_bucket("creds-files")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        (tmp_path / name).write_text(s3_env.env()[name] + "\n")  # as a Secret volume mounts them
        monkeypatch.delenv(name)
    monkeypatch.setenv("LIMR_S3_ACCESS_KEY_FILE", str(tmp_path / "AWS_ACCESS_KEY_ID"))
    monkeypatch.setenv("LIMR_S3_SECRET_KEY_FILE", str(tmp_path / "AWS_SECRET_ACCESS_KEY"))
    open_store(f"s3://{bucket}").put("k", b"x")
    assert open_store(f"s3://{bucket}").get("k") == b"x"
    (tmp_path / "AWS_SECRET_ACCESS_KEY").write_text("wrong-secret")
    with pytest.raises(AccessDenied):
        open_store(f"s3://{bucket}").put("k", b"y")


def test_s3_retries_then_reports_unreachable(monkeypatch) -> None:
    from tests.support.s3server import free_port

    monkeypatch.setenv("LIMR_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    from limr.store.s3 import S3Store

    store = S3Store("bucket", max_attempts=2, backoff_s=0.01)
    store._client._http.connection_pool_kw["retries"] = 0  # our retry loop, not urllib3's, is under test
    with pytest.raises(StoreError, match="gave up after 2 attempts"):
        store.get("k")


def test_unknown_scheme() -> None:
    with pytest.raises(StoreError, match="unsupported store URI scheme"):
        open_store("gs://bucket")
