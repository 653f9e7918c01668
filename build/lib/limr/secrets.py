"""Credentials from the environment: a variable `NAME`, or the file that `NAME_FILE` points to.

Kubernetes hands a Secret to a container either as an environment variable or as a mounted file. Files are
the safer form: they do not show in `kubectl describe`, /proc/<pid>/environ or the environment every child
process inherits, and the kubelet rotates them in place. The chart mounts every credential as a file and sets
`NAME_FILE` (e.g. LIMR_API_TOKEN_FILE=/var/run/secrets/limr/datasets/writer-token); local runs keep plain
variables. Every limr process reads its credentials through `env_secret`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


class SecretFileError(ValueError):
    """A `NAME_FILE` that cannot be read, or both `NAME` and `NAME_FILE` set."""


def env_secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret `name` from `environ` (default os.environ): `name` itself, else the contents of the file
    named by `name`_FILE (surrounding whitespace removed: files written by `echo` end in a newline). None when
    neither is set or the value is blank, so a blank Secret never becomes an empty, guessable token."""
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    path = env.get(f"{name}_FILE", "").strip()
    if value and path:
        raise SecretFileError(f"{name} and {name}_FILE are both set: set only one")
    if path:
        try:
            value = Path(path).read_text().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise SecretFileError(f"{name}_FILE={path}: cannot read the secret file ({e})") from e
    return value or None
