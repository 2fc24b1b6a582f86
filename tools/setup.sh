#!/usr/bin/env bash
# Everything the workflow and its tests need, from nothing; safe to run again (it skips what is done).
#  - a Python virtual environment in .venv (or $NCLAB_VENV) with the pinned packages of requirements.txt
#    and the CPU build of torch, so no CUDA packages are pulled;
#  - TeX Live with latexmk, installed with apt-get when run as root, otherwise a message saying what to install;
#  - SLURM and munge for the cluster integration test (tests/test_slurm.py), with apt-get when run as root;
#    without them that one test is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${NCLAB_VENV:-.venv}
stamp="$venv/.nclab-installed"

if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  echo "setup: creating the Python environment in $venv"
  python3 -m venv "$venv"
  pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  local_wheel=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$local_wheel" ]; then
    "${pip[@]}" "$local_wheel"
  else
    "${pip[@]}" torch==2.13.0 --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
  fi
  "${pip[@]}" -r requirements.txt
  "${pip[@]}" --no-deps --editable .  # the nclab package that the workflow's scripts import
  touch "$stamp"
fi

tex_packages="latexmk texlive-latex-recommended texlive-latex-extra texlive-science lmodern poppler-utils"
if ! command -v latexmk >/dev/null || ! command -v pdftotext >/dev/null || ! kpsewhich placeins.sty >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing TeX Live with apt-get (about a minute)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $tex_packages >/dev/null
  else
    echo "setup: TeX Live is missing. Install it, then run this again:" >&2
    echo "  sudo apt-get install --no-install-recommends $tex_packages" >&2
    echo "  (other systems: a TeX distribution with pdflatex, latexmk, bibtex and the packages of paper/paper.tex)" >&2
    exit 1
  fi
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v slurmctld >/dev/null; then
  echo "setup: installing SLURM and munge for the cluster integration test"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; }; } \
    || echo "setup: SLURM could not be installed; tests/test_slurm.py will be skipped" >&2
fi
echo "setup: ready ($("$venv/bin/python" -c 'import torch; print("torch", torch.__version__)'), $(latexmk -v | head -n 2 | tail -n 1))"
