# nclab's commands: `make paper` and `make test` are the README's two; the others serve development. Each sets
# itself up from nothing (tools/setup.sh) before running, except gpu-check (see its line).
VENV ?= .venv
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup paper test test-fast lint format benchmark gpu-check
setup:
	bash tools/setup.sh

paper: setup  ## regenerate results/miniature/paper/paper.pdf (the miniature study of config.yaml); goes on after any interruption
	python tools/unlock_if_stale.py
	snakemake --cores all
	@echo "paper: $(CURDIR)/results/miniature/paper/paper.pdf"

test:  ## the whole test suite (.ci/run calls this); its set-up adds SLURM for the cluster test
	bash tools/setup.sh --with-slurm
	python -m pytest -n 3 --dist loadgroup --no-loadscope-reorder  # work units and their order: tests/conftest.py

test-fast: setup  ## every test that runs neither Snakemake nor SLURM (the edit-test loop), on two workers
	python -m pytest -n 2 -m "not workflow"

lint: setup  ## formatters in check mode and linters, for Python (ruff) and Snakemake (snakefmt, snakemake --lint)
	ruff format --check .
	ruff check .
	snakefmt --check .
	snakemake --lint

format: setup  ## apply both formatters (ruff, snakefmt) and ruff's safe fixes
	ruff format .
	ruff check --fix .
	snakefmt .

benchmark: setup  ## measure and write docs/performance.md: miniature wall time, training throughput, metrics at CIFAR scale, ImageNet-LT decoding, preset dry runs, the laptop presets end to end (hours)
	python benchmarks/record.py docs/performance.md

gpu-check:  ## prove and time the CUDA path; no set-up, nothing downloaded (without a GPU: a reduced CPU run)
	python3 benchmarks/gpu_check.py $(GPU_CHECK_ARGS)
