#!/usr/bin/env bash
# Build .venv-vllm (vLLM's CPU build in its own venv) unless it already matches the recipe.
# The stamp hashes the recipe, so a changed scripts/setup_vllm.sh rebuilds it afresh.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-vllm}
stamp="$(cat scripts/setup_vllm.sh constraints-cpu.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$VENV/.ld-gym-setup" 2>/dev/null)" != "$stamp" ]; then
    echo "building $VENV afresh (scripts/setup_vllm.sh)"
    rm -rf "$VENV"
    bash scripts/setup_vllm.sh "$VENV" || exit 1
fi
