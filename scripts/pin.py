"""Print pyproject.toml's pin of a package (`torch==2.13.0`): the one place the torch version is stated.

Used where torch must be installed before the lock (scripts/setup.sh, scripts/lock.sh, the Dockerfile).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def pin(name: str, pyproject: Path) -> str:
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = [
        *project.get("dependencies", []),
        *(r for rs in project.get("optional-dependencies", {}).values() for r in rs),
    ]
    for req in reqs:
        m = re.fullmatch(rf"{re.escape(name)}\s*==\s*([^\s;,]+)", req.strip())
        if m:
            return f"{name}=={m.group(1)}"
    raise SystemExit(f"{pyproject}: no exact pin ({name}==X) of {name!r}")


if __name__ == "__main__":
    print(pin(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else "pyproject.toml")))
