"""The rollout Ray Serve application: `build_app(args) -> Application` (Python and RayService alike).

One deployment, `RolloutServer`, one vLLM engine per replica. It answers HTTP (FastAPI ingress) and
deployment-handle calls (`generate`, `load_checkpoint`, `weight_version`, `weight_hub`; the learner's in-cluster
path). New weights from a learner arrive over vLLM's weight-transfer group, driven through the deployment's
`WeightHub` (limr.rollout.sync): every replica is a `ReplicaMember` (limr.rollout.member) there, running the
hub's commands on a control thread.
Concurrent /v1/generate requests are coalesced into one engine call (`serve.batch`); weight updates wait for the
running requests and the next ones start on the new weights (limr.rollout.engine). The OpenAI routes are vLLM's
own OpenAI serving layer over the same engine (limr.rollout.openai_api).

RayService serveConfigV2:
    applications:
      - name: rollout
        import_path: limr.rollout.app:build_app
        args: {engine: {model: /models/tiny, max_model_len: 2048}, num_replicas: 2, num_gpus: 1}
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import ray
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from ray import serve
from ray.serve import Application

from limr.rollout.api import GenerateRequest, WeightsRequest, check_limits, errors
from limr.rollout.config import ADMIN_TOKEN_ENV, RolloutArgs
from limr.rollout.member import ReplicaMember
from limr.rollout.metrics import RolloutMetrics
from limr.rollout.sync import HUB_NAMESPACE, get_hub, hub_name
from limr.rollout.types import GenerateResult, InvalidRequest, RolloutError, SamplingSpec, WeightLoadError
from limr.secrets import env_secret

log = logging.getLogger(__name__)
api = FastAPI(title="limr rollout", description="vLLM rollouts for RL: batch sampling with logprobs, live weights")
# The OpenAI routes' answers: vLLM's response objects, SSE when stream=true, OpenAI-shaped errors (schemas: _openapi).
_OPENAI_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An OpenAI response object (application/json), or server-sent events when stream=true; "
        "header x-limr-weight-version names the weights that produced it.",
        "content": {"application/json": {}, "text/event-stream": {}},
    },
    400: {"description": "Bad request (schema, limits, prompt too long), in OpenAI's error shape."},
    404: {"description": "The model is not served here, in OpenAI's error shape."},
    503: {"description": "The engine refuses to sample (weights inconsistent after a failed update)."},
}


def _openapi() -> dict[str, Any]:
    """FastAPI's document plus vLLM's schemas of the OpenAI routes (limr.rollout.openai_api.document).

    Built on the first GET /openapi.json, in a replica, where vLLM is imported anyway (the driver that only
    builds the application never imports vLLM).
    """
    if api.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        from limr.rollout.openai_api import document

        schema = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
        document(schema)
        api.openapi_schema = schema
    return api.openapi_schema


# Set before @serve.ingress freezes a copy of `api`: the copy refers to this function (and this module's `api`).
api.openapi = _openapi  # type: ignore[method-assign]


@api.exception_handler(InvalidRequest)
async def _invalid(_: Request, exc: InvalidRequest) -> JSONResponse:
    return JSONResponse(status_code=400, content={"detail": str(exc)})


@api.exception_handler(WeightLoadError)
async def _bad_weights(_: Request, exc: WeightLoadError) -> JSONResponse:
    return JSONResponse(status_code=400, content={"detail": f"weights not loaded: {exc}"})


@api.exception_handler(RolloutError)
async def _unavailable(_: Request, exc: RolloutError) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": str(exc)})


# POST /v1/weights: `Authorization: Bearer <admin token>`, declared as the route's security scheme in OpenAPI.
_admin_bearer = HTTPBearer(auto_error=False, description="The rollout admin token (LIMR_ROLLOUT_ADMIN_TOKEN)")


def _replica_id() -> str:
    try:
        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # outside Serve (unit use)
        return f"pid{os.getpid()}"


@serve.deployment(name="rollout")
@serve.ingress(api)
class RolloutServer:
    """One vLLM engine behind HTTP and handle methods. Constructed by Serve from `build_app`'s arguments."""

    def __init__(self, args: dict[str, Any], deployment_id: str) -> None:
        from limr.rollout.engine import RolloutEngine  # the vLLM import happens in the replica only

        self.args = RolloutArgs.model_validate(args)
        self.engine = RolloutEngine(self.args.engine)
        self.metrics = RolloutMetrics(_replica_id(), self.engine.model_name)
        self._deployment_id = deployment_id
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rollout")
        self._created = int(time.time())
        from limr.rollout.openai_api import OpenAIServing

        self.openai = OpenAIServing.create(self.engine)
        self.member = ReplicaMember(
            get_hub(deployment_id),
            _replica_id(),
            self.engine,
            self.metrics,
            transfer_timeout_s=self.args.weight_transfer_timeout_s,
            sync_interval_s=self.args.weight_sync_interval_s,
        )
        self.member.start()  # a replica started mid-run loads the newest checkpoint or export before serving

    def __del__(self) -> None:
        """Serve's shutdown hook: leave the transfer group at once (else the hub drops us after its TTL)."""
        member = self.__dict__.get("member")  # absent when the constructor failed before joining
        if member is not None:
            member.stop()

    def check_health(self) -> None:
        """Serve's health probe: a dead engine or half-loaded weights fail it, so Serve replaces the replica
        (the new one loads the base checkpoint, then the hub's newest loadable version, and joins the next
        transfer)."""
        if not self.engine.ready:
            raise RuntimeError(self.engine.not_ready_reason)

    # ---- generation ------------------------------------------------------------------------------------
    def _run_batch(self, items: list[tuple[Any, SamplingSpec]]) -> list[Any]:
        try:
            self.member.sync()
        except (ray.exceptions.RayError, WeightLoadError):
            # Hub unreachable or its latest checkpoint unloadable: keep serving what this replica has; every
            # result still names its weight version, so callers can tell. The sync loop keeps retrying.
            log.exception("weight sync before a batch failed; serving version %d", self.engine.weight_version)
        return self.engine.generate_many(items)

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.0)
    async def _batched(self, items: list[tuple[Any, SamplingSpec]]) -> list[Any]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._run_batch, items)
        except Exception as e:  # engine-level failure: every request of the batch gets it
            return [e] * len(items)

    async def _generate(self, prompts: Any, spec: SamplingSpec, endpoint: str) -> GenerateResult:
        start = time.perf_counter()
        self.metrics.in_flight.inc()
        status = "error"
        try:
            if isinstance(prompts, str | bytes) or not isinstance(prompts, list | tuple):
                raise InvalidRequest("prompts must be a list of strings or of token-id lists")
            check_limits(len(prompts), spec.n, spec.max_tokens, self.args.limits)
            result = await self._batched((list(prompts), spec))
            if isinstance(result, Exception):
                raise result
            status = "ok"
        except InvalidRequest:
            status = "invalid"
            raise
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(endpoint, status).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
        self.metrics.observe_generation(
            prompts=len(result.results),
            samples=sum(len(r.samples) for r in result.results),
            prompt_tokens=sum(len(r.prompt_token_ids) for r in result.results),
            generated=result.num_generated_tokens,
        )
        return result

    # ---- handle API (in-cluster callers: the learner) --------------------------------------------------
    async def generate(
        self, prompts: list[str] | list[list[int]], spec: SamplingSpec | dict[str, Any]
    ) -> GenerateResult:
        """Sample a batch; `spec` a SamplingSpec or its dict. Raises InvalidRequest on bad input."""
        if isinstance(spec, dict):
            spec = SamplingSpec(**spec)
        return await self._generate(prompts, spec, "handle_generate")

    async def load_checkpoint(self, uri: str) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.member.load, uri, "handle")

    async def weight_hub(self) -> tuple[str, str]:
        """(name, namespace) of this deployment's WeightHub actor: where a learner forms its transfer group."""
        return hub_name(self._deployment_id), HUB_NAMESPACE

    async def weight_version(self) -> int:
        """The version this replica serves next: it first catches up with the hub's newest loadable version, so a
        read right after a checkpoint load (which may have landed on another replica) already sees it."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self.member.sync)
        return self.engine.weight_version

    # ---- HTTP ------------------------------------------------------------------------------------------
    @api.post("/v1/generate", responses=errors(400, 503))
    async def http_generate(self, req: GenerateRequest) -> Response:
        result = await self._generate(req.inputs, req.spec(), "generate")
        # json.dumps straight away: FastAPI's generic encoder walks every token and logprob (10x slower).
        return Response(content=json.dumps(result.to_dict()), media_type="application/json")

    @api.post("/v1/completions", responses=_OPENAI_RESPONSES)
    async def http_completions(self, request: Request) -> Response:
        """OpenAI completions (logprobs, echo, stop, stream), served by vLLM's OpenAI layer."""
        return await self._openai(request, "completions")

    @api.post("/v1/chat/completions", responses=_OPENAI_RESPONSES)
    async def http_chat_completions(self, request: Request) -> Response:
        """OpenAI chat completions with the model's chat template (stream too), served by vLLM's OpenAI layer."""
        return await self._openai(request, "chat")

    async def _openai(self, request: Request, kind: str) -> Response:
        start = time.perf_counter()
        response = await self.openai.respond(kind, await request.body(), self.args.limits)
        status = "ok" if response.status_code < 400 else "invalid" if response.status_code < 500 else "error"
        self.metrics.requests.labels(kind, status).inc()
        self.metrics.latency.labels(kind).observe(time.perf_counter() - start)  # a stream: until its first byte
        return response

    @api.get("/v1/models")
    async def http_models(self) -> dict[str, Any]:
        return await self.openai.models()

    @api.post("/v1/weights", responses=errors(400, 401, 403, 503))
    async def http_weights(
        self, req: WeightsRequest, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)]
    ) -> dict[str, Any]:
        # In a RayService the token comes from the pod's Secret (a mounted file named by
        # LIMR_ROLLOUT_ADMIN_TOKEN_FILE), never from the serveConfigV2 args (which Kubernetes shows to
        # anyone who can read the RayService).
        token = self.args.admin_token or env_secret(ADMIN_TOKEN_ENV)
        if not token:
            raise HTTPException(
                403, f"weight loading over HTTP is disabled (no admin_token configured, {ADMIN_TOKEN_ENV} unset)"
            )
        given = bearer.credentials if bearer else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong admin token (Authorization: Bearer ...)")
        loop = asyncio.get_running_loop()
        version = await loop.run_in_executor(self._executor, self.member.load, req.uri, "http")
        return {"weight_version": version}

    @api.get("/v1/weights", responses=errors(400, 503))
    async def http_weight_version(self) -> dict[str, Any]:
        return {"weight_version": await self.weight_version(), "model": self.engine.model_name}

    @api.get("/healthz")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz", responses={503: {"description": "Not ready: weights inconsistent or engine dead"}})
    async def readyz(self) -> JSONResponse:
        ready = self.engine.ready
        body = {"ready": ready, "weight_version": self.engine.weight_version, "model": self.engine.model_name}
        return JSONResponse(status_code=200 if ready else 503, content=body)

    @api.get("/metrics")
    async def http_metrics(self) -> Response:
        self.metrics.weight_version.set(self.engine.weight_version)
        body = self.metrics.render(self.engine.kv_cache_usage())
        return Response(content=body, media_type="text/plain; version=0.0.4; charset=utf-8")


def build_app(args: RolloutArgs | dict[str, Any]) -> Application:
    """The Serve application for `args` (a RolloutArgs, or its dict as a RayService config passes it)."""
    args = RolloutArgs.model_validate(args) if isinstance(args, dict) else args
    options: dict[str, Any] = {
        "name": args.deployment_name,
        "max_ongoing_requests": args.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": args.num_cpus, "num_gpus": args.num_gpus, "resources": dict(args.resources)},
        "health_check_period_s": 5,
    }
    if args.env_vars:
        options["ray_actor_options"]["runtime_env"] = {"env_vars": dict(args.env_vars)}
    if args.autoscaling:
        options["autoscaling_config"] = {
            "min_replicas": args.autoscaling_min_replicas,
            "max_replicas": args.autoscaling_max_replicas,
            "target_ongoing_requests": args.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = args.num_replicas
    return RolloutServer.options(**options).bind(args.model_dump(mode="json"), uuid.uuid4().hex[:12])
