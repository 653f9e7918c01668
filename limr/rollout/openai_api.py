"""The rollout service's OpenAI door: vLLM's own OpenAI serving layer over the rollout engine.

Completions (logprobs, echo, stop, streaming), chat completions (the model's chat template, streaming) and the
model list come from `vllm.entrypoints.openai` (OpenAIServingCompletion, OpenAIServingChat, OpenAIServingModels),
not from limr: the protocol, its validation and its error shape are vLLM's. limr adds two things around each
request: it runs on the engine's loop under a generation lease, so a request (every prompt and every streamed
chunk of it) comes from one weight version, which the service returns in the `x-limr-weight-version` header;
and the service's request limits (limr.rollout.config.RequestLimits) apply as they do to /v1/generate.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from pydantic.json_schema import models_json_schema
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.completion.protocol import CompletionRequest
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.entrypoints.serve.exception_handling.error_response import create_error_response
from vllm.exceptions import VLLMClientError

from limr.rollout.api import check_limits
from limr.rollout.config import RequestLimits
from limr.rollout.engine import RolloutEngine
from limr.rollout.types import InvalidRequest, RolloutError

# Which weights produced an OpenAI response (vLLM's response bodies have no field for it).
WEIGHT_VERSION_HEADER = "x-limr-weight-version"

# What a handler returns: a whole response, an error, or (stream=true) the server-sent-event lines.
Served = tuple[int | None, Any]


def openai_error(message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST, param: str | None = None) -> ErrorResponse:
    """An error in OpenAI's shape ({"error": {"message", "type", "param", "code"}}), built by vLLM."""
    err_type = {HTTPStatus.NOT_FOUND: "NotFoundError", HTTPStatus.SERVICE_UNAVAILABLE: "ServiceUnavailableError"}
    return create_error_response(message, err_type.get(status, "BadRequestError"), status, param)


class OpenAIServing:
    """vLLM's OpenAI handlers for one RolloutEngine. Build with `await OpenAIServing.create(engine)`."""

    def __init__(self, engine: RolloutEngine, completion: Any, chat: Any, models: Any) -> None:
        self._engine = engine
        self._completion = completion
        self._chat = chat
        self._models = models

    @classmethod
    def create(cls, engine: RolloutEngine) -> OpenAIServing:
        """Build the handlers on the engine's loop (vLLM's serving objects bind to the loop they run on)."""
        return engine.loop.run(cls._build(engine))

    @classmethod
    async def _build(cls, engine: RolloutEngine) -> OpenAIServing:
        from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
        from vllm.entrypoints.openai.completion.serving import OpenAIServingCompletion
        from vllm.entrypoints.openai.models.protocol import BaseModelPath
        from vllm.entrypoints.openai.models.serving import OpenAIServingModels
        from vllm.renderers.online_renderer import OnlineRenderer

        client = engine.engine_client
        models = OpenAIServingModels(client, [BaseModelPath(name=engine.model_name, model_path=engine.config.model)])
        renderer = OnlineRenderer(
            model_config=client.model_config,
            renderer=client.renderer,
            request_logger=None,
            chat_template=None,  # the model's own (tokenizer_config.json / chat_template.jinja)
            chat_template_content_format="auto",
        )
        completion = OpenAIServingCompletion(client, models, online_renderer=renderer, request_logger=None)
        chat = OpenAIServingChat(
            client,
            models,
            "assistant",
            online_renderer=renderer,
            request_logger=None,
            chat_template=None,
            chat_template_content_format="auto",
        )
        return cls(engine, completion, chat, models)

    async def respond(self, kind: str, body: bytes, limits: RequestLimits) -> Response:
        """The HTTP answer to a POST of `kind` ('completions' or 'chat'): JSON, an SSE stream, or an OpenAI error.

        A whole response, and every event of a stream, comes from the weight version in `x-limr-weight-version`.
        """
        chat = kind == "chat"
        parsed = parse_request(kind, body, limits)
        if isinstance(parsed, ErrorResponse):
            return _error_json(parsed)
        serve = self.chat if chat else self.completions
        try:
            version, result = await serve(parsed, limits)  # type: ignore[arg-type]
        except RolloutError as e:  # the engine refuses to sample (inconsistent weights, dead engine)
            return _error_json(openai_error(str(e), HTTPStatus.SERVICE_UNAVAILABLE))
        except (VLLMClientError, ValueError, TypeError, OverflowError) as e:  # vLLM's sampling-parameter checks
            return _error_json(openai_error(f"invalid request: {e}"))
        if isinstance(result, ErrorResponse):
            return _error_json(result)
        headers = {WEIGHT_VERSION_HEADER: str(version)}
        if hasattr(result, "__aiter__"):
            return StreamingResponse(result, media_type="text/event-stream", headers=headers)
        return JSONResponse(result.model_dump(), headers=headers)

    async def models(self) -> dict[str, Any]:
        listing = await self._engine.loop.call(self._models.show_available_models())
        return listing.model_dump()

    async def completions(self, request: CompletionRequest, limits: RequestLimits) -> Served:
        prompts = request.prompt if isinstance(request.prompt, list) and request.prompt else [request.prompt]
        num_prompts = 1 if isinstance(prompts[0], int) else len(prompts)
        if error := _over_limits(num_prompts, request.n, request.max_tokens, limits):
            return None, error
        return await self._serve(self._completion.create_completion, request)

    async def chat(self, request: ChatCompletionRequest, limits: RequestLimits) -> Served:
        max_tokens = request.max_completion_tokens or request.max_tokens
        if error := _over_limits(1, request.n, max_tokens, limits):
            return None, error
        return await self._serve(self._chat.create_chat_completion, request)

    async def _serve(self, create: Callable[[Any, None], Awaitable[Any]], request: Any) -> Served:
        """(weight version, vLLM's result); a stream is iterable on the caller's loop and holds its lease."""
        version, result = await self._engine.loop.call(self._leased(create, request))
        if hasattr(result, "__aiter__"):
            result = self._engine.loop.stream(result)
        return version, result

    async def _leased(self, create: Callable[[Any, None], Awaitable[Any]], request: Any) -> Served:
        """On the engine loop: run the handler under a lease; a stream keeps the lease until it ends."""
        stack = contextlib.AsyncExitStack()
        version = await stack.enter_async_context(self._engine.leased())
        try:
            result = await create(request, None)
        except BaseException:
            await stack.aclose()
            raise
        if not hasattr(result, "__aiter__"):
            await stack.aclose()
            return version, result

        async def held() -> AsyncIterator[str]:
            async with stack:
                async for chunk in result:
                    yield chunk

        return version, held()


def parse_request(
    kind: str, body: bytes, limits: RequestLimits
) -> CompletionRequest | ChatCompletionRequest | ErrorResponse:
    """The request of a POST of `kind` ('completions' or 'chat'), or the OpenAI-shaped 400 that refuses it.

    vLLM's models accept some values its engine then rejects with an exception (a negative `n` or
    `max_tokens`, an empty prompt list): those are refused here. A chat request without `max_tokens` gets the
    service's limit, so no request escapes it (vLLM would otherwise generate up to the context length).
    """
    model = ChatCompletionRequest if kind == "chat" else CompletionRequest
    try:
        request = model.model_validate_json(body)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return openai_error(f"{where}: {first['msg']}", param=where or None)
    except (VLLMClientError, ValueError, TypeError, RecursionError) as e:  # vLLM's own model validators
        return openai_error(f"invalid request: {e}")
    if request.n is not None and request.n < 1:
        return openai_error(f"n: must be at least 1, got {request.n}", param="n")
    fields = ("max_completion_tokens", "max_tokens") if kind == "chat" else ("max_tokens",)
    for name in fields:
        value = getattr(request, name, None)
        if value is not None and value < 1:
            return openai_error(f"{name}: must be at least 1, got {value}", param=name)
    if isinstance(request, CompletionRequest) and request.prompt in ([], "", None):
        return openai_error("prompt: must not be empty", param="prompt")
    if isinstance(request, ChatCompletionRequest) and limits.max_tokens is not None:
        if request.max_completion_tokens is None and request.max_tokens is None:
            request.max_completion_tokens = limits.max_tokens
    if isinstance(request, CompletionRequest) and request.max_tokens is None and limits.max_tokens is not None:
        request.max_tokens = limits.max_tokens
    return request


def _over_limits(num_prompts: int, n: int | None, max_tokens: int | None, limits: RequestLimits) -> Any:
    """None, or the limit a request exceeds as an OpenAI error."""
    try:
        check_limits(num_prompts, n or 1, max_tokens, limits)
    except InvalidRequest as e:
        return openai_error(str(e))
    return None


def _error_json(error: ErrorResponse) -> JSONResponse:
    return JSONResponse(error.model_dump(), status_code=error.error.code)


def document(schema: dict[str, Any]) -> None:
    """Complete the service's OpenAPI document with vLLM's schemas of the OpenAI routes (request bodies, errors).

    The routes parse their bodies themselves (vLLM's models are imported in the replica only, and a schema error
    must be answered in OpenAI's shape with 400, not FastAPI's 422), so FastAPI cannot see them.
    """
    bodies = {"/v1/completions": CompletionRequest, "/v1/chat/completions": ChatCompletionRequest}
    refs, defs = models_json_schema(
        [(m, "validation") for m in (*bodies.values(), ErrorResponse)], ref_template="#/components/schemas/{model}"
    )
    schema.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
    error = {"application/json": {"schema": refs[(ErrorResponse, "validation")]}}
    for path, model in bodies.items():
        op = schema["paths"][path]["post"]
        body = {"application/json": {"schema": refs[(model, "validation")]}}
        op["requestBody"] = {"required": True, "content": body}
        for code, response in op["responses"].items():
            if code != "200":
                response["content"] = error
