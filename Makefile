# The two commands a new user needs: `make demo` (main job on the embedded default) and `make test`.
.PHONY: setup demo test test-fast lint bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/limr demo

test:
	bash scripts/test.sh

test-fast:
	bash scripts/test.sh -m "not slow"

lint:
	.venv/bin/ruff check limr services tests benchmarks scripts && .venv/bin/ruff format --check limr services tests benchmarks scripts && .venv/bin/mypy
