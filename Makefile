# Longtail: two commands do everything on a fresh machine.
#   make run    set up the environment, run the main job on the embedded default (simulated fleet)
#   make test   set up the environment, run the tests
SHELL := /bin/bash
PY := .venv/bin/python
TARGET ?= local

.PHONY: help setup browser run test lint lab bench bench-quick preview lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed -E 's/:.*## /\t/'

setup:  ## create or reuse the locked environment (cached outside the checkout) and link .venv
	@env/setup-venv.sh

browser:  ## headless Chromium from the OS packages, for the tests that look at pages
	@env/setup-browser.sh

run: setup  ## run the pipeline on TARGET (default: local) and print where the results are
	$(PY) -m longtail run --target $(TARGET)

test: setup browser lint bench-quick  ## lint, every benchmark on tiny inputs, then the whole test suite (real servers are started by the tests)
	$(PY) -m pytest -q

lint: setup  ## ruff, mypy and the import-layering contracts (import-linter) on the library
	$(PY) -m ruff check src tests bench notebooks
	$(PY) -m mypy
	.venv/bin/lint-imports

lab: setup  ## JupyterLab on the notebooks (jupytext pairs .py and .ipynb)
	$(PY) -m jupyter lab --notebook-dir=. --ServerApp.ip=127.0.0.1 --ServerApp.port=$${PORT:-8888} --no-browser --allow-root \
	    --ServerApp.jpserver_extensions=ploomber=False

bench: setup  ## benchmarks, the KPI experiment last (estimated 2 h on 2 quiet cores; not timed in one piece); results go to bench/RESULTS.md, bench/results/ and the README's KPI block
	$(PY) bench/sim.py
	$(PY) bench/ingest.py
	$(PY) bench/curate.py
	$(PY) bench/train.py
	$(PY) bench/deploy.py --record bench/RESULTS.md
	$(PY) bench/fleet_test.py
	$(PY) bench/drift.py --record bench/RESULTS.md
	$(PY) bench/privacy.py --record
	$(PY) bench/kpi.py --record bench/RESULTS.md --readme README.md

# Each benchmark's own code on tiny inputs (--quick): checks they still run, times nothing, records nothing.
bench-quick: setup  ## every benchmark on tiny inputs (--quick), to check they still run; records nothing
	$(PY) bench/sim.py --quick
	$(PY) bench/ingest.py --quick
	$(PY) bench/curate.py --quick
	$(PY) bench/train.py --quick
	$(PY) bench/deploy.py --quick
	$(PY) bench/fleet_test.py --quick
	$(PY) bench/drift.py --quick
	$(PY) bench/privacy.py --quick
	$(PY) bench/quality.py --quick
	$(PY) bench/defaults.py --quick
	$(PY) bench/sm_entry.py --quick
	$(PY) bench/prelabel_cost.py --quick
	$(PY) bench/speed_turn2.py --quick
	$(PY) bench/kpi.py --quick

preview: setup  ## re-render the README's gallery of simulated frames
	$(PY) -m longtail sim-preview --out docs/fleet --seed 7

lock:  ## re-resolve the whole dependency set into env/requirements.lock (needs the package index)
	env/lock.sh

clean:  ## stop the data roots' servers (MongoDB, Label Studio), remove generated data and build products (the cached environment stays)
	@for r in data build/ci; do if [ -f $$r/fiftyone/mongod.json ] && [ -x $(PY) ]; then $(PY) -m longtail db stop --root $$r; fi; done
	@for r in data build/ci; do if [ -f $$r/labelstudio/server.json ] && [ -x $(PY) ]; then $(PY) -m longtail label stop --root $$r; fi; done
	rm -rf data build .pytest_cache .mypy_cache .ruff_cache
