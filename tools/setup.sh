#!/usr/bin/env bash
# Everything the workflow and its tests need, from nothing; safe to run again (it skips what is done).
#  - a Python virtual environment in .venv (or $NCLAB_VENV) with the pinned packages of requirements.txt and
#    the torch build that fits the machine: the CUDA build when an NVIDIA GPU answers (nvidia-smi), the CPU
#    build otherwise (no CUDA packages pulled); NCLAB_TORCH=cuda or NCLAB_TORCH=cpu forces either, and
#    `bash tools/setup.sh --print-torch-build` only prints the choice;
#  - an import hook (a .pth file) so that `import torchvision` works in any Python of .venv beside a CPU torch;
#  - TeX Live with latexmk, installed with apt-get when run as root, otherwise a message saying what to install;
#  - with --with-slurm only (`make test`; `make paper` does not need it): SLURM, munge and job accounting
#    (slurmdbd, MariaDB) for the cluster integration test (tests/test_slurm.py), with apt-get when run as root;
#    without them that one test is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${NCLAB_VENV:-.venv}
stamp="$venv/.nclab-installed"  # holds the torch build installed

torch_build() {  # cuda or cpu: NCLAB_TORCH when set, else cuda where nvidia-smi lists a GPU
  case "${NCLAB_TORCH:-}" in
    cuda|cpu) echo "$NCLAB_TORCH" ;;
    "") if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then echo cuda; else echo cpu; fi ;;
    *) echo "setup: NCLAB_TORCH must be cuda or cpu, not '$NCLAB_TORCH'" >&2; return 2 ;;
  esac
}
build=$(torch_build)
with_slurm=false
case "${1:-}" in
  --print-torch-build) echo "$build"; exit 0 ;;
  --with-slurm) with_slurm=true ;;
  "") ;;
  *) echo "setup: unknown option '$1' (allowed: --print-torch-build, --with-slurm)" >&2; exit 2 ;;
esac

if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ "$(cat "$stamp")" != "$build" ]; then
  echo "setup: creating the Python environment in $venv (torch: $build build)"
  python3 -m venv "$venv"
  pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  torch_pin=$(grep -E '^torch==' requirements.txt | cut -d' ' -f1)
  vision_pin=$(grep -E '^torchvision==' requirements.txt | cut -d' ' -f1)
  if [ "$build" = cuda ]; then  # PyPI's Linux wheels are the CUDA builds; a local CPU wheel must not win
    PIP_FIND_LINKS="" "${pip[@]}" --force-reinstall "$torch_pin" "$vision_pin" \
      --index-url "${TORCH_CUDA_INDEX_URL:-https://pypi.org/simple}"
  else
    local_wheel=$(ls /opt/wheels/torch-"${torch_pin#torch==}"+cpu-*.whl 2>/dev/null | head -n 1 || true)
    if [ -n "$local_wheel" ]; then
      "${pip[@]}" "$local_wheel"
    else
      "${pip[@]}" "$torch_pin" --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
    fi
  fi
  "${pip[@]}" -r requirements.txt
  "${pip[@]}" --no-deps --editable .  # the nclab package that the workflow's scripts import
  echo "$build" > "$stamp"
fi

# `import torchvision` in every Python of the environment, a researcher's scripts included: nclab's import hook
# (src/nclab/torchvision_compat.py), which acts only where torchvision's compiled part does not match torch
"$venv/bin/python" -c 'import pathlib, sysconfig; from nclab import torchvision_compat as c
pathlib.Path(sysconfig.get_paths()["purelib"], "nclab-torchvision.pth").write_text(c.PTH_LINE)'

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
slurm_packages="slurm-wlm munge slurmdbd mariadb-server"
if $with_slurm && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! { command -v slurmctld \
    && command -v slurmdbd && command -v mariadbd; } >/dev/null; then
  echo "setup: installing SLURM, munge and job accounting (slurmdbd, MariaDB) for the cluster integration test"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends $slurm_packages >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $slurm_packages >/dev/null; }; } \
    || echo "setup: SLURM could not be installed; tests/test_slurm.py will be skipped" >&2
fi
torch_sees='import torch
build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU, device cpu"
print(f"torch {torch.__version__}, {build}, sees {device}")'
echo "setup: ready ($("$venv/bin/python" -c "$torch_sees"); $(latexmk -v | head -n 2 | tail -n 1))"
