#!/usr/bin/env bash
# The checks a lent GPU runs, in one call of under 9 minutes (README, "On a GPU"):
#  1. a smoke model trained and scored on CUDA (the stack works);
#  2. the `paper` MNIST split model trained for a few minutes (`studylib probe`): images/s,
#     peak GPU memory, accuracy and bits/dim reached, hours for the whole run;
#  3. the peer benchmark at the `paper` configurations on the GPU;
#  4. chapters at `smoke` with device "auto" (CUDA): papermill when installed, else the
#     chapters as Python scripts from $CHAPTER_SCRIPTS (made with jupytext --to py:percent).
# Each step has its own time limit, so one failing step costs only itself.
# usage: bash tools/gpu_checks.sh OUT_DIR [PROBE_MINUTES]
set -uo pipefail
out=${1:?usage: bash tools/gpu_checks.sh OUT_DIR [PROBE_MINUTES]}
minutes=${2:-2.5}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export STUDYLIB_HOME=${STUDYLIB_HOME:-$out/home} STUDYLIB_RESULTS=$out/results
log=$out/log.txt

step() {  # step NAME SECONDS COMMAND...: run it under its limit, log it, say how it went
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    echo "== $name: $*" >>"$log"
    timeout "$limit" "$@" >>"$log" 2>&1
    rc=$?
    echo "$name: rc $rc, $(($(date +%s) - start)) s" | tee -a "$out/summary.txt"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } | tee "$out/summary.txt"
step smoke-train 90 python3 -m studylib train --dataset mnist --objective split --profile smoke --device cuda
step probe $((${minutes%.*} * 60 + 120)) python3 -m studylib probe --profile paper --dataset mnist --objective split \
    --minutes "$minutes" --device cuda --out "$out/probe.json"
step peers 150 python3 -m studylib bench --peers --profile paper --device cuda --repeats 3 --out "$out/peers.json"
for chapter in 02_training 04_attacks 08_appendices; do
    if python3 -c "import papermill" 2>/dev/null; then
        step "$chapter" 90 env STUDYLIB_PROFILE=smoke python3 -m studylib book run --profile smoke \
            --chapters "${chapter%%_*}" --out "$out/book"
    else
        step "$chapter" 90 env STUDYLIB_PROFILE=smoke python3 "${CHAPTER_SCRIPTS:?}/$chapter.py"
    fi
done
grep -h "whole run\|speedup over the faster peer" "$log" | tee -a "$out/summary.txt"
