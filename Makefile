# The two commands a new user needs: `make demo` (main job on the embedded default) and `make test`.
.PHONY: setup demo test test-fast lint bench images up down

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/limr demo

test:
	bash scripts/test.sh

# The container deployment (docs/deploy.md): images built here (no registry), then the chart's pods as containers.
images: setup
	bash scripts/images.sh

up: images
	.venv/bin/limr deploy up

down:
	.venv/bin/limr deploy down

test-fast:
	bash scripts/test.sh -m "not slow"

lint:
	.venv/bin/ruff check limr services tests benchmarks scripts && .venv/bin/ruff format --check limr services tests benchmarks scripts && .venv/bin/mypy

# The benchmarks the README quotes, at nice 19 (the machine is shared); results land in benchmarks/results/ and
# the README's "Measured" benchmark block is regenerated from them (tests/bench/test_report.py keeps them equal).
BENCH_PY = nice -n 19 .venv/bin/python
bench:
	mkdir -p benchmarks/results
	$(BENCH_PY) benchmarks/lim_scoring.py --rounds 2 --out benchmarks/results/lim_scoring.json >/dev/null
	$(BENCH_PY) benchmarks/rollout.py --rounds 3 --out benchmarks/results/rollout.json >/dev/null
	$(BENCH_PY) benchmarks/train_step.py --steps 3 --out benchmarks/results/train_step.json >/dev/null
	$(BENCH_PY) benchmarks/train_step.py --steps 3 --size small --out benchmarks/results/train_step_small.json >/dev/null
	$(BENCH_PY) benchmarks/services.py --s3 --out benchmarks/results/services.json >/dev/null
	$(BENCH_PY) benchmarks/services.py --queries-only --query-rate 500 --query-seconds 10 --api-workers 2 --out benchmarks/results/services_queries_local_500.json >/dev/null
	$(BENCH_PY) benchmarks/services.py --s3 --queries-only --query-rate 500 --query-seconds 10 --api-workers 2 --out benchmarks/results/services_queries_s3_500.json >/dev/null
	$(BENCH_PY) benchmarks/services.py --s3 --queries-only --query-rate 200 --query-seconds 10 --api-workers 2 --out benchmarks/results/services_queries_s3_200.json >/dev/null
	.venv/bin/python benchmarks/report.py --write
