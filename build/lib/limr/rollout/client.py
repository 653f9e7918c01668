"""Clients of the rollout service: over HTTP (anyone) and through a Serve deployment handle (in-cluster).

Both expose the same `generate(prompts, spec) -> GenerateResult`, so the learner can switch between them.
The HTTP client retries what is worth retrying (connection errors, timeouts, 502/503/504) with exponential
backoff, and never retries 4xx: a bad request stays bad. `deploy_local` runs the app with `serve.run` on the
current Ray cluster and returns both clients.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from limr.rollout.config import RolloutArgs
from limr.rollout.types import GenerateResult, InvalidRequest, RolloutError, SamplingSpec

_RETRY_STATUS = (502, 503, 504)


class RolloutHTTPError(RolloutError):
    """The service answered with an error status (after retries, for retryable ones)."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class RolloutClient:
    """HTTP client of one rollout application (`base_url` includes its route prefix, e.g. http://host:8000)."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 120.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        admin_token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.admin_token = admin_token
        # `transport`: for tests (httpx.MockTransport) or custom connection pools.
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RolloutClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                resp = self._http.request(method, path, **kw)
            except (httpx.TransportError, httpx.TimeoutException):
                if last:
                    raise
            else:
                if resp.status_code < 400:
                    return resp
                if resp.status_code not in _RETRY_STATUS or last:
                    try:
                        body = resp.json()
                        # limr's routes answer {"detail": ...}, the OpenAI routes {"error": {"message": ...}}
                        detail = body.get("detail") or body.get("error", {}).get("message") or resp.text
                    except (ValueError, AttributeError):
                        detail = resp.text
                    if resp.status_code in (400, 422):
                        raise InvalidRequest(f"HTTP {resp.status_code}: {detail}")
                    raise RolloutHTTPError(resp.status_code, detail)
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def generate(self, prompts: list[str] | list[list[int]], spec: SamplingSpec | None = None) -> GenerateResult:
        """Sample `spec.n` completions per prompt (texts or token-id lists)."""
        spec = spec or SamplingSpec()
        key = "prompts" if prompts and isinstance(prompts[0], str) else "prompt_token_ids"
        body = {key: prompts, **spec.to_dict()}
        return GenerateResult.from_dict(self._request("POST", "/v1/generate", json=body).json())

    def completions(self, **body: Any) -> dict[str, Any]:
        """OpenAI-style /v1/completions (pass the OpenAI fields as keyword arguments)."""
        return self._request("POST", "/v1/completions", json=body).json()

    def models(self) -> list[str]:
        return [m["id"] for m in self._request("GET", "/v1/models").json()["data"]]

    def load_checkpoint(self, uri: str) -> int:
        """Ask the service to load a checkpoint (needs the admin token); returns the new weight version."""
        headers = {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}
        return int(self._request("POST", "/v1/weights", json={"uri": uri}, headers=headers).json()["weight_version"])

    def weight_version(self) -> int:
        return int(self._request("GET", "/v1/weights").json()["weight_version"])

    def metrics(self) -> str:
        return self._request("GET", "/metrics").text

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"rollout service at {self.base_url} not ready after {timeout_s:.0f}s")
            time.sleep(0.5)


class HandleRolloutClient:
    """In-cluster client over a Serve DeploymentHandle: no HTTP. New weights go through `weight_hub`."""

    def __init__(self, handle: Any, timeout_s: float | None = 600.0) -> None:
        self.handle = handle
        self.timeout_s = timeout_s

    def generate(self, prompts: list[str] | list[list[int]], spec: SamplingSpec | None = None) -> GenerateResult:
        return self.handle.generate.remote(list(prompts), spec or SamplingSpec()).result(timeout_s=self.timeout_s)

    def load_checkpoint(self, uri: str) -> int:
        return self.handle.load_checkpoint.remote(uri).result(timeout_s=self.timeout_s)

    def weight_version(self) -> int:
        return self.handle.weight_version.remote().result(timeout_s=self.timeout_s)

    def weight_hub(self) -> Any:
        """The deployment's WeightHub actor, where a learner (limr.learner.weight_sync) sends weights from."""
        import ray

        name, namespace = self.handle.weight_hub.remote().result(timeout_s=self.timeout_s)
        return ray.get_actor(name, namespace=namespace)


@dataclass
class LocalDeployment:
    """A rollout app running on the current Ray cluster, with both clients."""

    name: str
    handle_client: HandleRolloutClient
    http_client: RolloutClient

    def shutdown(self) -> None:
        from ray import serve

        self.http_client.close()
        serve.delete(self.name)


def deploy_local(
    args: RolloutArgs,
    name: str = "rollout",
    route_prefix: str = "/",
    http_host: str = "127.0.0.1",
    http_port: int = 8000,
    timeout_s: float = 120.0,
) -> LocalDeployment:
    """`serve.run` the app on the connected (or a new local) Ray cluster; returns its clients once ready."""
    from ray import serve

    from limr.rollout.app import build_app

    serve.start(http_options={"host": http_host, "port": http_port})
    handle = serve.run(build_app(args), name=name, route_prefix=route_prefix)
    prefix = "" if route_prefix == "/" else route_prefix.rstrip("/")
    http = RolloutClient(f"http://{http_host}:{http_port}{prefix}", timeout_s=timeout_s, admin_token=args.admin_token)
    http.wait_ready()
    return LocalDeployment(name=name, handle_client=HandleRolloutClient(handle), http_client=http)
