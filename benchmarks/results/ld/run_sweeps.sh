#!/bin/sh
# The LD sweeps of benchmarks/results/ld/ (run from the repository root).
# Episode counts were cut to what a 2-core CPU shared with four other jobs could run
# before the deadline (see README.md); rerun with --episodes 200 in the same folders to
# extend them (sweeps resume).
set -x
N_P=${N_P:-6}
N_T=${N_T:-30}
.venv/bin/ld-gym bench TwentyOne-v0 --policies ld,optimal,scripted,ld_oracle --episodes "$N_T" --chunk-size "$N_T" --seed 0 --out benchmarks/results/ld/TwentyOne-v0 --no-progress
.venv/bin/ld-gym bench Pursuit-v0 --policies ld,scripted,ld_oracle --episodes "$N_P" --chunk-size "$N_P" --seed 0 --out benchmarks/results/ld/Pursuit-v0 --no-progress
.venv/bin/ld-gym bench PursuitRestricted-v0 --policies ld,scripted,ld_oracle --episodes "$N_P" --chunk-size "$N_P" --seed 0 --out benchmarks/results/ld/PursuitRestricted-v0 --no-progress
