"""The lock files (scripts/lock.sh): every dependency pinned with hashes, consistent with pyproject.toml and with
each other, and what scripts/setup.sh installs from."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip requirements file written by `uv pip compile --generate-hashes`."""
    out: dict[str, tuple[str, list[str]]] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)\s*(.*)$", line)
        if m:
            name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
            out[name] = (m.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", m.group(3)))
    return out


def _direct() -> dict[str, list[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return {"runtime": project["dependencies"] + extras["ml"], "dev": extras["dev"]}


def _name(req: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.\-]+", req).group(0)).lower()


def test_every_direct_dependency_is_locked_with_hashes_at_its_pyproject_pin():
    run, dev = _locked(REPO / "requirements.lock"), _locked(REPO / "requirements-dev.lock")
    for scope, reqs in _direct().items():
        for req in reqs:
            name = _name(req)
            if name == "torch":  # installed first from the CPU wheel (see scripts/lock.sh)
                continue
            lock = dev if scope == "dev" else run
            assert name in lock, f"{name} ({scope}) is not in the lock: run scripts/lock.sh"
            version, hashes = lock[name]
            assert hashes, f"{name} has no hash"
            pin = re.search(r"==\s*([^\s;,]+)", req)
            if pin:
                assert version == pin.group(1), f"{name}: lock {version} != pyproject {pin.group(1)}"
    assert _locked(REPO / "requirements.lock")["transformers"][0]  # unpinned in pyproject, pinned here


def test_runtime_lock_is_the_dev_lock_without_dev_tools_and_leaves_torch_out():
    run, dev = _locked(REPO / "requirements.lock"), _locked(REPO / "requirements-dev.lock")
    assert {k: v[0] for k, v in run.items()} == {k: dev[k][0] for k in run}
    for name in ("torch", "torchvision", "torchaudio", "torchcodec"):
        assert name not in run and name not in dev
    assert "pytest" in dev and "pytest" not in run


def test_setup_installs_the_lock_with_hashes_and_stamps_it():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "--require-hashes --no-deps -r" in setup and "requirements-dev.lock" in setup
    assert re.search(r"HASH=\$\(cat pyproject.toml \"\$LOCK\" scripts/setup.sh", setup)  # a new lock reinstalls


def test_scan_lock_pins_checkov_at_its_pyproject_pin_with_hashes():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (req,) = project["optional-dependencies"]["scan"]
    scan = _locked(REPO / "requirements-scan.lock")
    version, hashes = scan[_name(req)]
    assert req == f"checkov=={version}" and hashes
    assert all(h for _, h in scan.values())  # every transitive dependency too
    assert (
        "--require-hashes --no-deps -r requirements-scan.lock" in (REPO / "scripts" / "fetch-checkov.sh").read_text()
    )
