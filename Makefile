# The two commands of the README. Each sets itself up from nothing (tools/setup.sh) before running.
VENV ?= .venv
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup paper test test-fast lint benchmark gpu-check
setup:
	bash tools/setup.sh

paper: setup  ## regenerate results/paper/paper.pdf (the miniature study of config.yaml)
	snakemake --cores all
	@echo "paper: $(CURDIR)/results/paper/paper.pdf"

test:  ## the whole test suite (.ci/run calls this); its set-up adds SLURM for the cluster test
	bash tools/setup.sh --with-slurm
	python -m pytest -n 2 --dist loadgroup  # two workers: the SLURM tests beside the others (tests/conftest.py)

test-fast: setup  ## every test that runs neither Snakemake nor SLURM (the edit-test loop)
	python -m pytest -m "not workflow"

lint: setup
	snakemake --lint

benchmark: setup  ## print the measured figures: miniature wall time, training throughput, metrics at CIFAR scale, ImageNet-LT decoding, preset dry runs
	python benchmarks/time_miniature.py
	python benchmarks/train_throughput.py
	python benchmarks/metrics_scale.py
	python benchmarks/imagenet_lt_decode.py
	python benchmarks/dry_run.py

gpu-check:  ## prove and time the CUDA path; no set-up, nothing downloaded (without a GPU: a reduced CPU run)
	python3 benchmarks/gpu_check.py $(GPU_CHECK_ARGS)
