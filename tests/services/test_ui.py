"""The web view (`/ui/`): pages over a scored, published run, its auth, and a real headless Chromium that
navigates it, moves the threshold control and reads the browser console (no errors allowed).

Screenshots for the docs: `LIMR_UI_SCREENSHOTS=docs/img /work/bin/t tests/services/test_ui.py -k browser`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from limr.curation.policy import PublishPolicy
from limr.store import open_store
from services.datasets.config import DatasetsSettings
from services.datasets.main import create_app
from services.scorer.config import ScorerSettings
from services.scorer.ingest import Ingestor
from tests.support.browser import console_errors, headless_chromium
from tests.support.s3server import free_port

READ = "r3ad-t0ken"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> str:
    """A finished 6-epoch run scored epoch by epoch (interim versions, then the final one) and a second run
    that has not completed an epoch yet."""
    from tests.services.conftest import RunWriter

    root = str(tmp_path_factory.mktemp("ui-store"))
    store = open_store(root)
    policies = (PublishPolicy(name="{run}-lim-0.6", threshold=0.6), PublishPolicy(name="{run}-top20", top_k=20))
    ingest = Ingestor(store, ScorerSettings(store=root, policies=policies, notifications="off"))
    w = RunWriter(store, "lim-demo", prompts=120, epochs=6, steps_per_epoch=2, seed=3)
    w.start()
    for epoch, step in w.steps():
        w.write_step(epoch, step)
        if step % 2:
            ingest.poll_once()
    w.finish()
    ingest.poll_once()
    fresh = RunWriter(store, "just-started", prompts=10, epochs=3)
    fresh.start()
    fresh.write_step(0, 0)
    ingest.poll_once()
    return root


@pytest.fixture
def client(store_dir):
    with TestClient(create_app(DatasetsSettings(store=store_dir))) as c:
        yield c


def test_pages_render_the_run_and_its_datasets(client):
    index = client.get("/ui/")
    assert index.status_code == 200 and "lim-demo" in index.text and "just-started" in index.text
    assert "lim-demo-lim-0.6" in index.text and "finished, final published" in index.text
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
    run = client.get("/ui/runs/lim-demo")
    assert run.status_code == 200 and 'id="threshold"' in run.text and 'id="histogram"' in run.text
    assert "lim-demo-top20" in run.text and ">final<" in run.text  # names its published datasets
    api = client.get("/v1/runs/lim-demo/scores", params={"min_score": 0.6, "limit": 1}).json()
    assert f'id="kept-count">{api["total"]}<' in run.text  # the server's count agrees with the API's
    low = client.get("/ui/runs/lim-demo", params={"threshold": 0.2})
    api_low = client.get("/v1/runs/lim-demo/scores", params={"min_score": 0.2, "limit": 1}).json()
    assert f'id="kept-count">{api_low["total"]}<' in low.text and api_low["total"] > api["total"]
    pending = client.get("/ui/runs/just-started")
    assert pending.status_code == 200 and "no scores yet" in pending.text
    found = client.get("/ui/runs/lim-demo/prompts", params={"q": "what is 11 +", "source": "synthetic"})
    assert found.status_code == 200 and "p0011" in found.text and "p0012" not in found.text
    assert "1 prompt matches" in found.text
    blank = client.get("/ui/runs/lim-demo/prompts", params={"q": "", "min_score": "", "max_score": "0.5"})
    half = client.get("/v1/runs/lim-demo/scores", params={"max_score": 0.5, "limit": 1}).json()["total"]
    assert blank.status_code == 200 and f"{half} prompts match" in blank.text  # blank fields: no bound
    bad = client.get("/ui/runs/lim-demo/prompts", params={"min_score": "nan"})
    assert bad.status_code == 422 and "min_score" in bad.text
    one = client.get("/ui/runs/lim-demo/prompts/p0011")
    assert "What is 11 + 11?" in one.text and 'id="trajectory"' in one.text
    versions = client.get("/ui/datasets/lim-demo-lim-0.6")
    assert (
        versions.status_code == 200 and "/v1/datasets/lim-demo-lim-0.6/versions/1/data?format=parquet" in versions.text
    )
    diff = client.get("/ui/datasets/lim-demo-lim-0.6/diff", params={"from": 1, "to": 3})
    api_diff = client.get("/v1/datasets/lim-demo-lim-0.6/diff", params={"from": 1, "to": 3}).json()
    assert f"<strong>{api_diff['added_count']}</strong> added" in diff.text
    manifest = client.get("/ui/datasets/lim-demo-lim-0.6/versions/2")
    assert "content_hash" in manifest.text and "download-jsonl" in manifest.text


def test_errors_are_pages_and_static_files_come_from_packages(client):
    missing = client.get("/ui/runs/nope")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"] and "nope" in missing.text
    assert client.get("/ui/datasets/nope").status_code == 404
    assert client.get("/ui/datasets/lim-demo-lim-0.6/diff", params={"from": 1, "to": 99}).status_code == 404
    assert client.get("/ui/runs/lim-demo/prompts/nope").status_code == 404
    assert client.get("/v1/runs/nope").json()["detail"]  # the API still answers JSON
    from importlib import resources

    js = client.get("/ui/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert js.status_code == 200 and js.headers["content-encoding"] == "gzip"
    bundled = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    assert js.content == bundled  # the installed package's bundle (httpx decoded the gzip)
    again = client.get("/ui/static/plotly.min.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/ui/static/other.js").status_code == 422
    assert "/ui/" not in client.get("/openapi.json").text  # pages are not API operations


def test_read_token_guards_pages_and_the_sign_in_cookie_opens_them(store_dir):
    with TestClient(create_app(DatasetsSettings(store=store_dir, read_token=READ))) as c:
        r = c.get("/ui/runs/lim-demo", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/runs/lim-demo"
        assert c.get("/v1/runs").status_code == 401
        bad = c.post("/ui/login", data={"token": "wrong", "next": "/ui/runs/lim-demo"})
        assert bad.status_code == 401 and "not accepted" in bad.text
        evil = c.post("/ui/login", data={"token": READ, "next": "https://evil.example/"}, follow_redirects=False)
        assert evil.status_code == 303 and evil.headers["location"] == "/ui/"  # no open redirect
        cookie = evil.cookies.get("limr_token")
        assert cookie == READ and "httponly" in evil.headers["set-cookie"].lower()
        assert c.get("/ui/runs/lim-demo").status_code == 200  # the cookie jar sends it now
        assert c.get("/v1/datasets/lim-demo-lim-0.6/versions/1/data").status_code == 200  # downloads too
        c.post("/ui/logout")
        assert c.get("/ui/", follow_redirects=False).status_code == 303


@pytest.fixture
def live_ui(store_dir):
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(DatasetsSettings(store=store_dir)), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _wait(driver, cond, timeout_s: float = 30.0):  # noqa: ANN001, ANN202
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s).until(lambda d: cond(d))


def _plotted(driver, element_id: str) -> bool:  # noqa: ANN001
    """plotly.js drew the figure: its SVG is there with at least one trace."""
    return bool(driver.execute_script(
        "const el = document.getElementById(arguments[0]);"
        "return !!(el && el._fullData && el._fullData.length && el.querySelector('svg.main-svg'));", element_id,
    ))  # fmt: skip


def test_browser_navigates_and_the_threshold_control_changes_the_count(live_ui):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shots = os.environ.get("LIMR_UI_SCREENSHOTS")

    def shot(driver, name: str) -> None:  # noqa: ANN001
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(Path(shots) / f"ui-{name}.png"))

    with headless_chromium() as driver:
        driver.get(f"{live_ui}/ui/")
        runs = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#runs-table tbody td:first-child a")]
        sets = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#datasets-table tbody td:first-child a")]
        assert set(runs) == {"lim-demo", "just-started"} and set(sets) == {"lim-demo-lim-0.6", "lim-demo-top20"}
        shot(driver, "index")

        driver.find_element(By.LINK_TEXT, "lim-demo").click()
        _wait(driver, lambda d: _plotted(d, "r-avg") and _plotted(d, "histogram") and _plotted(d, "kept-curve"))
        assert driver.current_url.endswith("/ui/runs/lim-demo")
        published = {a.text for a in driver.find_elements(By.CSS_SELECTOR, "#published-table tbody td:first-child a")}
        assert published == {"lim-demo-lim-0.6", "lim-demo-top20"}
        count = lambda: int(driver.find_element(By.ID, "kept-count").text)  # noqa: E731
        at_06 = count()
        assert at_06 == httpx.get(f"{live_ui}/v1/runs/lim-demo/scores", params={"min_score": 0.6}).json()["total"]
        shot(driver, "run")

        slider = driver.find_element(By.ID, "threshold")
        slider.click()  # focus: the middle of the track is 0.5
        for _ in range(60):
            slider.send_keys(Keys.ARROW_LEFT)
        _wait(driver, lambda d: d.find_element(By.ID, "threshold-value").text == "0.00")
        at_0 = count()
        api_0 = httpx.get(f"{live_ui}/v1/runs/lim-demo/scores", params={"min_score": 0.0}).json()["total"]
        assert at_0 == api_0 and at_0 > at_06
        for _ in range(90):
            slider.send_keys(Keys.ARROW_RIGHT)
        _wait(driver, lambda d: d.find_element(By.ID, "threshold-value").text == "0.90")
        api_09 = httpx.get(f"{live_ui}/v1/runs/lim-demo/scores", params={"min_score": 0.9}).json()["total"]
        assert count() == api_09 < at_06
        line_x = driver.execute_script("return document.getElementById('histogram').layout.shapes[0].x0")
        assert line_x == pytest.approx(0.9)  # the histogram's threshold line followed the control
        assert "min_score=0.90" in driver.find_element(By.ID, "kept-link").get_attribute("href")

        driver.find_element(By.ID, "kept-link").click()
        rows = driver.find_elements(By.CSS_SELECTOR, "#prompts-table tbody tr")
        assert len(rows) == min(api_09, 50) and driver.find_element(By.ID, "min_score").get_attribute("value") == "0.9"

        driver.get(f"{live_ui}/ui/runs/lim-demo/prompts")
        box = driver.find_element(By.ID, "q")
        box.send_keys("What is 3")
        box.submit()
        _wait(driver, lambda d: "q=What" in d.current_url)
        ids = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#prompts-table tbody td:first-child a")]
        assert sorted(ids) == ["p0003"] + [f"p{i:04d}" for i in range(30, 40)]
        shot(driver, "prompts")
        driver.find_element(By.LINK_TEXT, "p0003").click()
        _wait(driver, lambda d: _plotted(d, "trajectory"))
        assert driver.find_element(By.ID, "prompt-text").text == "What is 3 + 3?"
        shot(driver, "prompt")

        driver.get(f"{live_ui}/ui/datasets/lim-demo-lim-0.6")
        versions = driver.find_elements(By.CSS_SELECTOR, "#versions-table tbody tr")
        assert len(versions) >= 3 and "final" in versions[0].text
        shot(driver, "dataset")
        driver.find_element(By.CSS_SELECTOR, "#diff-form button").click()
        _wait(driver, lambda d: "/diff?" in d.current_url)
        assert "added" in driver.find_element(By.ID, "diff-summary").text
        shot(driver, "diff")

        driver.get(f"{live_ui}/ui/datasets/lim-demo-lim-0.6/versions/1")
        _wait(driver, lambda d: _plotted(d, "histogram"))
        href = driver.find_element(By.ID, "download-parquet").get_attribute("href")
        assert httpx.get(href).content[:4] == b"PAR1"
        assert console_errors(driver) == []
