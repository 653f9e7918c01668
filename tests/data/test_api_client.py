"""The one dataset-API client: base URL and token from the environment, the token only for its own base URL,
one error with the URL, status and the API's detail."""

from __future__ import annotations

import httpx
import pytest

from limr.data.api_client import DatasetAPIError, DatasetsClient, api_url, env_token


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("LIMR_DATASETS_URL", "LIMR_READ_TOKEN", "LIMR_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    return monkeypatch


def _recording(seen: list[httpx.Request], status: int = 200, **body):
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, **(body or {"json": {"versions": [1, 2], "items": []}}))

    return httpx.MockTransport(handler)


def test_base_url_and_tokens_come_from_the_environment_and_secret_files(clean_env, tmp_path):
    assert api_url() == "http://127.0.0.1:8080" and api_url("http://h:1/") == "http://h:1"
    clean_env.setenv("LIMR_DATASETS_URL", "http://datasets:8080/")
    assert api_url() == "http://datasets:8080"
    (tmp_path / "reader").write_text("r-token\n")
    clean_env.setenv("LIMR_READ_TOKEN_FILE", str(tmp_path / "reader"))
    clean_env.setenv("LIMR_API_TOKEN", "w-token")
    assert env_token() == "r-token"  # a reader uses the least privilege it has
    assert env_token(write=True) == "w-token"
    seen: list[httpx.Request] = []
    with DatasetsClient(transport=_recording(seen)) as c:
        assert c.versions("lim") == [1, 2]
    assert str(seen[0].url) == "http://datasets:8080/v1/datasets/lim/versions"
    assert seen[0].headers["Authorization"] == "Bearer r-token"


def test_should_send_the_token_only_to_its_own_base_url(clean_env):
    seen: list[httpx.Request] = []
    with DatasetsClient("http://api:8080", "secret", transport=_recording(seen)) as c:
        c.call("GET", "/v1/datasets")
        c.call("GET", "http://api:8080/v1/datasets/x/versions/1/data")  # a full URL of the same API
        c.call("GET", "http://elsewhere:8080/v1/datasets/x/versions/1/data")  # another server
        c.call("GET", "https://api:8080/v1/datasets")  # another scheme (and port default) is another origin
        c.call("GET", "http://api:8081/v1/datasets")
        assert c.sends_token_to("/v1/x") and not c.sends_token_to("http://elsewhere:8080/v1/x")
    assert [r.headers.get("Authorization") for r in seen] == ["Bearer secret", "Bearer secret", None, None, None]
    with DatasetsClient("https://api", "secret", transport=_recording(seen)) as c:
        c.call("GET", "https://api:443/v1/datasets")  # the default port is the same origin
    assert seen[-1].headers["Authorization"] == "Bearer secret"


def test_redirects_are_not_followed_so_the_token_never_travels_on(clean_env):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(307, headers={"Location": "http://evil/v1/datasets"})

    with DatasetsClient("http://api", "secret", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(DatasetAPIError, match="HTTP 307 .*redirect to http://evil/v1/datasets not followed"):
            c.call("GET", "/v1/datasets")
    assert [str(r.url) for r in seen] == ["http://api/v1/datasets"]


def test_one_error_names_what_the_url_the_status_and_the_detail(clean_env):
    seen: list[httpx.Request] = []
    with DatasetsClient("http://api", transport=_recording(seen, 404, json={"detail": "no dataset 'x'"})) as c:
        with pytest.raises(DatasetAPIError, match=r"versions of x: HTTP 404 from http://api/v1/datasets/x/versions: "
                           r"no dataset 'x'") as e:  # fmt: skip
            c.versions("x")
        assert e.value.status == 404
        assert c.versions("x", missing_ok=True) == [] and c.version_listing("x", missing_ok=True) is None
    with DatasetsClient("http://api", transport=_recording(seen, 500, text="boom")) as c:
        with pytest.raises(DatasetAPIError, match="publish x: HTTP 500 .*: boom"):
            c.publish("x", {"run": "r"})

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with DatasetsClient("http://api", transport=httpx.MockTransport(down)) as c:
        with pytest.raises(DatasetAPIError, match="x v1: dataset API http://api unreachable") as e:
            c.data("x", 1)
        assert e.value.status is None
        with pytest.raises(DatasetAPIError, match="unreachable"), c.stream("GET", "/v1/datasets/x/versions/1/data"):
            pass


def test_publish_tells_a_new_version_from_an_unchanged_one(clean_env):
    for status, created in ((201, True), (200, False)):
        seen: list[httpx.Request] = []
        with DatasetsClient("http://api", "w", transport=_recording(seen, status, json={"version": 3})) as c:
            assert c.publish("lim", {"run": "r"}) == ({"version": 3}, created)
        assert seen[0].method == "POST" and seen[0].headers["Authorization"] == "Bearer w"
