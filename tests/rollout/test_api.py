"""Fast checks of the rollout vocabulary, configs, HTTP schemas, client retries and CLI (no engine, no sockets)."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import ValidationError

from limr.rollout.api import GenerateRequest, check_limits
from limr.rollout.client import RolloutClient, RolloutHTTPError
from limr.rollout.config import EngineConfig, RequestLimits, RolloutArgs
from limr.rollout.types import GenerateResult, InvalidRequest, PromptResult, Sample, SamplingSpec


def _result() -> GenerateResult:
    samples = [
        Sample(token_ids=[5, 6], text="ab", logprobs=[-0.1, -0.2], finish_reason="stop"),
        Sample(token_ids=[7], text="c", logprobs=[-0.3], finish_reason="length"),
    ]
    return GenerateResult(results=[PromptResult("p", [1, 2, 3], samples)], weight_version=4, model="tiny")


def test_sampling_spec_validates() -> None:
    assert SamplingSpec().n == 1
    for bad in ({"n": 0}, {"temperature": -0.1}, {"top_p": 0}, {"top_p": 1.5}, {"max_tokens": 0}, {"stop": [""]}):
        with pytest.raises(InvalidRequest):
            SamplingSpec(**bad)


def test_generate_result_round_trips_and_counts() -> None:
    r = _result()
    back = GenerateResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r and back.num_generated_tokens == 3
    assert [s.truncated for s in back.results[0].samples] == [False, True]


def test_rollout_args_derive_and_validate() -> None:
    args = RolloutArgs(engine=EngineConfig(model="/m/tiny", max_model_len=300))
    assert args.limits.max_tokens == 299 and args.engine.name == "tiny" and not args.autoscaling
    # The dict form (RayService serveConfigV2 `args:`) validates to the same thing.
    assert RolloutArgs.model_validate(args.model_dump(mode="json")) == args
    with pytest.raises(ValidationError, match="together"):
        RolloutArgs(engine=EngineConfig(model="m"), autoscaling_min_replicas=1)
    with pytest.raises(ValidationError, match="autoscaling_min_replicas"):
        RolloutArgs(engine=EngineConfig(model="m"), autoscaling_min_replicas=3, autoscaling_max_replicas=2)
    with pytest.raises(ValidationError, match="max_model_len"):
        RolloutArgs(engine=EngineConfig(model="m", max_model_len=64), limits=RequestLimits(max_tokens=64))
    with pytest.raises(ValidationError, match="extra"):
        RolloutArgs(engine=EngineConfig(model="m"), replicas=2)
    with pytest.raises(ValidationError, match="dtype"):
        EngineConfig(model="m", dtype="int3")
    auto = RolloutArgs(engine=EngineConfig(model="m"), autoscaling_min_replicas=0, autoscaling_max_replicas=4)
    assert auto.autoscaling


def test_generate_request_schema_and_limits() -> None:
    req = GenerateRequest(prompt_token_ids=[[1, 2]], n=2, max_tokens=5, seed=3)
    assert req.inputs == [[1, 2]] and req.spec().n == 2 and req.spec().seed == 3
    for bad in ({}, {"prompts": ["a"], "prompt_token_ids": [[1]]}, {"prompts": []}, {"prompts": ["a"], "x": 1}):
        with pytest.raises(ValidationError):
            GenerateRequest(**bad)
    limits = RequestLimits(max_prompts=4, max_n=8, max_tokens=16, max_samples=16)
    check_limits(4, 4, 16, limits)
    check_limits(1, 1, None, limits)  # chat without max_tokens: the engine bounds it by max_model_len
    for prompts, n, max_tokens, field in (
        (5, 1, 8, "prompts"),
        (1, 9, 8, "n=9"),
        (1, 1, 17, "max_tokens"),
        (3, 8, 8, "samples"),
    ):
        with pytest.raises(InvalidRequest, match=field):
            check_limits(prompts, n, max_tokens, limits)


def _client(handler, **kw) -> RolloutClient:  # noqa: ANN001
    return RolloutClient("http://rollout", transport=httpx.MockTransport(handler), backoff_s=0.001, **kw)


def test_client_retries_transient_errors_not_bad_requests() -> None:
    calls = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        if len(calls) == 2:
            return httpx.Response(503, json={"detail": "replica starting"})
        body = json.loads(request.content)
        assert body["prompt_token_ids"] == [[1, 2]] and body["n"] == 2
        return httpx.Response(200, json=_result().to_dict())

    assert _client(flaky, retries=3).generate([[1, 2]], SamplingSpec(n=2)) == _result()
    assert calls == ["/v1/generate"] * 3

    bad_calls = []

    def bad(request: httpx.Request) -> httpx.Response:
        bad_calls.append(1)
        return httpx.Response(400, json={"detail": "n=99 > limit 64"})

    with pytest.raises(InvalidRequest, match="n=99"):
        _client(bad, retries=3).generate(["x"], SamplingSpec(n=99))
    assert len(bad_calls) == 1, "4xx must not be retried"

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"detail": "down"})

    with pytest.raises(RolloutHTTPError) as e:
        _client(down, retries=2).weight_version()
    assert e.value.status_code == 503


def test_client_sends_admin_token() -> None:
    def weights(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != "Bearer t0k":
            return httpx.Response(401, json={"detail": "missing or wrong admin token"})
        return httpx.Response(200, json={"weight_version": 7})

    assert _client(weights, admin_token="t0k").load_checkpoint("s3://b/ckpt") == 7
    with pytest.raises(RolloutHTTPError, match="401"):
        _client(weights).load_checkpoint("s3://b/ckpt")


def test_cli_dry_run_builds_args(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from limr.cli.main import app

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    cfg = tmp_path / "rollout.yaml"
    cfg.write_text("engine: {max_model_len: 512}\nlimits: {max_n: 16}\nnum_cpus: 2\n")
    monkeypatch.setenv("LIMR_ROLLOUT_ADMIN_TOKEN", "secret")
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "serve",
            "rollout",
            "--model",
            str(model),
            "--config",
            str(cfg),
            "--replicas",
            "3",
            "--max-tokens",
            "100",
            "--dry-run",
        ],
    )
    assert res.exit_code == 0, res.output
    shown = json.loads(res.stdout)
    assert shown["engine"]["model"] == str(model) and shown["engine"]["max_model_len"] == 512
    assert shown["limits"]["max_n"] == 16 and shown["limits"]["max_tokens"] == 100
    assert shown["num_replicas"] == 3 and shown["num_cpus"] == 2 and shown["admin_token"] == "***"

    token = tmp_path / "admin-token"  # the chart mounts the token as a file (LIMR_ROLLOUT_ADMIN_TOKEN_FILE)
    token.write_text("secret\n")
    monkeypatch.delenv("LIMR_ROLLOUT_ADMIN_TOKEN")
    monkeypatch.setenv("LIMR_ROLLOUT_ADMIN_TOKEN_FILE", str(token))
    res = runner.invoke(app, ["serve", "rollout", "--model", str(model), "--dry-run"])
    assert res.exit_code == 0 and json.loads(res.stdout)["admin_token"] == "***", res.output
    monkeypatch.delenv("LIMR_ROLLOUT_ADMIN_TOKEN_FILE")
    res = runner.invoke(app, ["serve", "rollout", "--model", str(model), "--dry-run"])
    assert res.exit_code == 0 and json.loads(res.stdout)["admin_token"] is None, res.output

    res = runner.invoke(app, ["serve", "rollout", "--model", str(model), "--max-model-len", "8", "--dry-run"])
    assert res.exit_code == 2 and "max_model_len" in res.output
    res = runner.invoke(app, ["serve", "rollout", "--model", str(tmp_path), "--dry-run"])
    assert res.exit_code == 2 and "config.json" in res.output
