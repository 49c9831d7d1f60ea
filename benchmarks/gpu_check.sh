#!/usr/bin/env bash
# The floor benchmark on a GPU, in one run of at most 5 minutes: P up to 10^6, N ∈ {64, 256}.
#
#   benchmarks/gpu_check.sh [WHEEL_DIR]
#
# Run from anywhere inside the repository on a machine with an NVIDIA GPU and Python ≥ 3.11 with
# the project's dependencies installed (numpy, jaxtyping, ...; `pip install -e .`). If JAX does not
# already see a GPU, it installs the CUDA 12 wheels of JAX: from WHEEL_DIR only when one is given
# (`pip install --no-index --find-links WHEEL_DIR -U "jax[cuda12]"`: no downloads), otherwise from
# the configured index (`pip install -U "jax[cuda12]"`). Nothing else is downloaded.
#
# Environment: PYTHON (default python3); GPU_CHECK_SECONDS (the benchmark's share of the 5
# minutes, default 240); GPU_CHECK_PROBLEMS (default 131072,1048576 = 2^17, 2^20: with the batch
# below, both sizes of one N share one compiled engine); GPU_CHECK_BUDGETS (default 64,256);
# GPU_CHECK_REPEATS (default 2); GPU_CHECK_BATCH_SLOTS (slots per engine call, default 2^23: keeps
# one call's state well within an 80 GB GPU); GPU_CHECK_ALLOW_CPU=1 (skip the install and the GPU
# check: a dry run of this script on a CPU, with small GPU_CHECK_PROBLEMS). Compiled programs are
# cached in .cache/gpu-check (a second run skips most compiles). The cells run smallest first and
# each prints its rows as it finishes, so a run cut by the time limit still prints what it measured.
#
# Expected output: a header line (jax version, platform "gpu", device count, CPUs, world,
# repeats), the device line from nvidia-smi, the column header, then one row per (rule, P, N):
#
#   rule                  engine            P    N     steps/s      floor/s  ×floor       law/s   ×law  cpu×fl cpu×law  words ns/word  util    numpy/s  ×numpy        load
#   rebase                pool(16384) 131072   64  d,ddd,ddd,ddd  dd,ddd,ddd,ddd  dd.d×  dd,ddd,ddd   d.d×   dd.d×    d.d×   63.4    0.0d  0.9d    ddd,ddd  ddd.dd×   x.x→x.x
#   dora                  pool(16384) 131072   64  ...                                                                88.8          0.9d                  ...
#   temperature_sampling  pool(16384) 131072   64  ...                                                                63.4    ...   0.2d
#
# (P is rounded up to a whole number of engine calls; steps/s = engine rollout-steps per second;
# floor/s = rollout-steps per second if only the words the law consumes were generated, with the
# world's counter hash, on the same device; ×floor = engine time / floor time; law/s and ×law = the
# same for the world's own step with no search (the law's floor); cpu×fl, cpu×law = both ratios in
# process CPU time; words = words per rollout-step; util = alive / computed slot-steps; numpy/s and ×numpy (REBASE) = the vectorized
# NumPy search on the host's CPU, one problem at a time, and engine / NumPy.) The same records as
# JSON lines are written to $GPU_CHECK_JSONL (default .cache/gpu_check.jsonl), and the script exits
# non-zero if JAX sees no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=${1:-}
if [[ -n "$WHEELS" && ! -d "$WHEELS" ]]; then
  echo "gpu_check: wheel directory $WHEELS does not exist" >&2
  exit 2
fi
has_gpu() { "$PY" -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' 2>/dev/null; }
if [[ "${GPU_CHECK_ALLOW_CPU:-0}" == 1 ]]; then
  echo "gpu_check: GPU_CHECK_ALLOW_CPU=1: running on whatever JAX sees (a test of this script)"
elif ! has_gpu; then
  if [[ -n "$WHEELS" ]]; then
    install=("$PY" -m pip install -q --no-index --find-links "$WHEELS" -U "jax[cuda12]")
  else
    install=("$PY" -m pip install -q -U "jax[cuda12]")
  fi
  if ! "${install[@]}"; then
    echo "gpu_check: could not install jax[cuda12] (${WHEELS:-from the package index})" >&2
    exit 1
  fi
fi
if [[ "${GPU_CHECK_ALLOW_CPU:-0}" != 1 ]] && ! has_gpu; then
  echo "gpu_check: JAX sees no GPU (backend: $("$PY" -c 'import jax; print(jax.default_backend())' 2>&1 | tail -1))" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$PWD/.cache/gpu-check}"
JSONL="${GPU_CHECK_JSONL:-$PWD/.cache/gpu_check.jsonl}"
mkdir -p "$(dirname "$JSONL")"
rm -f "$JSONL"
status=0
timeout "${GPU_CHECK_SECONDS:-240}" "$PY" benchmarks/floor.py \
  --problems "${GPU_CHECK_PROBLEMS:-131072,1048576}" \
  --budgets "${GPU_CHECK_BUDGETS:-64,256}" \
  --repeats "${GPU_CHECK_REPEATS:-2}" \
  --batch-slots "${GPU_CHECK_BATCH_SLOTS:-8388608}" \
  --numpy-problems 100 --count-problems 50 --jsonl "$JSONL" || status=$?
if [[ $status == 124 ]]; then
  echo "gpu_check: stopped at the ${GPU_CHECK_SECONDS:-240} s limit; the rows above are complete cells"
elif [[ $status != 0 ]]; then
  exit "$status"
fi
