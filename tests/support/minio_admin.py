"""A stand-in for the part of MinIO's admin API that `limr store provision` calls, over real HTTP.

MinIO's server cannot be installed on the test machines (no binary on PyPI), so this answers the same routes with
MinIO's documented behaviour: the request must be signed with the root key (the credential in the SigV4
Authorization header), the add-user and attach bodies are encrypted with the root secret (minio.crypto's format:
argon2id key, AES-GCM / ChaCha20-Poly1305 chunks), an existing policy or user is replaced, and re-attaching an
attached policy answers 400 `XMinioAdminPolicyChangeAlreadyApplied`. It also answers HEAD/PUT of a bucket.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from minio.crypto import decrypt, encrypt


class _Body(io.RawIOBase):
    """A request body as the response object minio.crypto.decrypt reads."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        return self._buf.read(n)

    def release_conn(self) -> None:
        pass


@dataclass
class FakeMinio:
    root_key: str
    root_secret: str
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # access key -> secret
    attached: dict[str, list[str]] = field(default_factory=dict)  # user -> policies
    buckets: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeMinio:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                self._reply(status, json.dumps({"Code": code, "Message": message}).encode())

            def _handle(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if f"Credential={fake.root_key}/" not in (self.headers.get("Authorization") or ""):
                    return self._error(403, "AccessDenied", "not signed with the root credentials")
                if not url.path.startswith("/minio/admin/v3/"):
                    return self._bucket(url.path.strip("/"), query)
                command = url.path.removeprefix("/minio/admin/v3/")
                fake.calls.append(command)
                if command == "add-canned-policy" and self.command == "PUT":
                    fake.policies[query["name"]] = json.loads(body)
                    return self._reply(200)
                if command == "add-user" and self.command == "PUT":
                    fake.users[query["accessKey"]] = json.loads(decrypt(_Body(body), fake.root_secret))["secretKey"]
                    return self._reply(200)
                if command == "idp/builtin/policy/attach" and self.command == "POST":
                    req = json.loads(decrypt(_Body(body), fake.root_secret))
                    if req["user"] not in fake.users:
                        return self._error(404, "XMinioAdminNoSuchUser", "The specified user does not exist.")
                    if missing := [p for p in req["policies"] if p not in fake.policies]:
                        return self._error(404, "XMinioAdminNoSuchPolicy", f"no policy {missing}")
                    have = fake.attached.setdefault(req["user"], [])
                    new = [p for p in req["policies"] if p not in have]
                    if not new:
                        already = "The specified policy change is already in effect."
                        return self._error(400, "XMinioAdminPolicyChangeAlreadyApplied", already)
                    have += new
                    return self._reply(200, encrypt(json.dumps({"policiesAttached": new}).encode(), fake.root_secret))
                return self._error(400, "XMinioAdminInvalidArgument", f"unexpected {self.command} {command}")

            def _bucket(self, bucket: str, query: dict[str, str]) -> None:
                if self.command == "GET" and "location" in query:
                    body = b'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>'
                    return self._reply(200, body, "application/xml")
                if self.command == "HEAD":
                    return self._reply(200 if bucket in fake.buckets else 404)
                if self.command == "PUT":
                    fake.buckets.add(bucket)
                    return self._reply(200)
                return self._error(400, "InvalidRequest", self.command)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
