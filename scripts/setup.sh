#!/usr/bin/env bash
# Install ld-gym with every extra this machine can run into ./.venv (idempotent).
#
# torch first, then the rest under a constraint that keeps it (see DEVELOPERS.md):
#   * here `pip install torch==2.13.0` takes the CPU build that lies on disk, and an
#     unpinned torch would pull a CUDA build of several GB;
#   * elsewhere set LD_GYM_TORCH to what you want (e.g. LD_GYM_TORCH="torch" for the
#     registry's default CUDA build on a GPU machine, or a torch already installed is kept
#     with LD_GYM_TORCH=keep).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${LD_GYM_TORCH:-torch==2.13.0}
EXTRAS=${LD_GYM_EXTRAS:-all}

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

if [ "$TORCH_SPEC" != "keep" ]; then
    "${PIP[@]}" install "$TORCH_SPEC"
fi
# Constrain every later install to the torch that is now installed.
TORCH_VERSION=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('torch'))")
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==${TORCH_VERSION}" > "$CONSTRAINTS"
"${PIP[@]}" install -c "$CONSTRAINTS" -e ".[${EXTRAS}]"
echo "ld-gym installed in .venv (torch ${TORCH_VERSION}, extras: ${EXTRAS})"

# vLLM pins other versions, so its CPU build gets its own venv (.venv-vllm). Built where
# torch is the CPU build (GPU machines use the `vllm` extra instead); LD_GYM_VLLM=0 skips it.
if [ "${LD_GYM_VLLM:-1}" = "1" ] && [[ "$TORCH_VERSION" == *+cpu ]]; then
    bash scripts/ensure_vllm.sh .venv-vllm \
        || echo "warning: .venv-vllm could not be built (the vLLM backend tests will fail)"
fi
