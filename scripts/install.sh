#!/usr/bin/env bash
# Idempotent set-up of fairseq-compactemb into the ACTIVE Python environment ($PYTHON, default
# python3). A second run only re-checks the imports and returns in seconds.
#
#  * torch: kept as it is when importable (so a CUDA build on a GPU machine stays); otherwise the
#    CPU build torch==2.13.0. Every later pip call is constrained to the installed torch version,
#    so no dependency can pull a second torch.
#  * fairseq: PyPI fairseq 0.12.2 does not import on Python 3.11, so we build fairseq-fixed
#    0.12.3.1 with --no-build-isolation --no-deps after its real runtime deps (no torchaudio:
#    not needed for text, and it cannot be met with this torch). numpy stays < 2: fairseq 0.12
#    still calls np.compat.long / np.int (hub scoring, some batching paths).
#  * this package: editable install (pip install --no-deps -e .).
#  * the slim output layer's optional C++ kernel: JIT-built once by torch (needs a C++ compiler
#    and ninja; cached under ~/.cache/torch_extensions); without it the layer uses PyTorch.
set -euo pipefail
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
REPO=$(pwd)

ready() {
  (cd / && "$PY" - "$REPO" <<'PYEOF' >/dev/null 2>&1
import os, sys
import torch, fairseq, sentencepiece, sacrebleu, hydra, omegaconf, pytest, xdist, matplotlib, tensorboardX, faiss, sklearn
import fairseq_compactemb, numpy
assert int(numpy.__version__.split(".")[0]) < 2  # fairseq 0.12 uses np.compat / np.int
# the editable install must point at THIS checkout
assert os.path.realpath(os.path.dirname(os.path.dirname(fairseq_compactemb.__file__))) == os.path.realpath(sys.argv[1])
PYEOF
  )
}

build_kernel() {
  if ! command -v ninja >/dev/null 2>&1 && ! "$PY" -c "import ninja" >/dev/null 2>&1; then
    "$PY" -m pip install --disable-pip-version-check -q ninja || true
  fi
  if (cd / && "$PY" -c "import sys; from fairseq_compactemb.modules import slim_kernel; sys.exit(slim_kernel.load() is None)") >/dev/null 2>&1; then
    echo "[install] slim output C++ kernel built"
  else
    echo "[install] WARNING: the slim output C++ kernel did not build; slim log-probs use the slower PyTorch path" \
         "(details: $PY -c 'from fairseq_compactemb.modules import slim_kernel; slim_kernel.load(verbose=True)')"
  fi
}

if ready; then
  echo "[install] all dependencies present ($("$PY" -c 'import torch,fairseq;print("torch",torch.__version__,"fairseq",fairseq.__version__)'))"
  build_kernel
  exit 0
fi

PIP=("$PY" -m pip install --disable-pip-version-check -q)

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "[install] torch missing: installing the CPU build torch==2.13.0"
  "${PIP[@]}" torch==2.13.0
else
  echo "[install] keeping the installed torch $("$PY" -c 'import torch;print(torch.__version__)')"
fi
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
"$PY" -c "import torch;print('torch==' + torch.__version__)" > "$CONSTRAINTS"

echo "[install] fairseq runtime deps, sentencepiece, sacrebleu, faiss-cpu (k-means of compress), test (pytest, pytest-xdist)/plot/tensorboard tools"
"${PIP[@]}" -c "$CONSTRAINTS" cffi cython "hydra-core==1.3.2" "omegaconf==2.3.0" "numpy<2" regex \
  sacrebleu tqdm bitarray scikit-learn packaging sentencepiece pytest pytest-xdist matplotlib tensorboardX faiss-cpu

if ! "$PY" -c "import fairseq" >/dev/null 2>&1; then
  echo "[install] building fairseq-fixed==0.12.3.1 (C extensions, about 2 minutes)"
  "${PIP[@]}" --no-build-isolation --no-deps fairseq-fixed==0.12.3.1
fi

echo "[install] fairseq-compactemb (editable)"
"${PIP[@]}" --no-build-isolation --no-deps -e "$REPO"

ready || { echo "[install] FAILED: imports still broken, run: $PY -c 'import fairseq_compactemb'"; exit 1; }
build_kernel
echo "[install] done"
