"""Tiny models for the vLLM backend tests, built in seconds and cached on disk.

`build_tiny_models(root)` makes, under `root/<BUILD_VERSION>/`:
- `tokenizer`: a byte-level BPE tokenizer trained on generated "Step k: … \\n\\n … \\boxed{…}"
  solutions, with a ChatML chat template (`<|im_start|>role\\n…<|im_end|>`, EOS `<|im_end|>`) and
  the PRM step tag `<extra_0>` as a special token;
- `policy`: a `Qwen2ForCausalLM` (2 layers, width 64, head_dim 32: the CPU attention backend
  accepts head sizes 32, 64, 80, …) trained for `TRAIN_STEPS` steps on chat-templated solutions,
  so that its samples end their steps at "\\n\\n" and their solutions at EOS (random weights
  never emit "\\n\\n");
- `prm`: a `Qwen2ForProcessRewardModel` (the Qwen2.5-Math-PRM head: Linear → ReLU → Linear to 2
  labels) on the policy's trunk with a random head; it only has to run and return probabilities;
- `embedder`: a small random `BertModel`.

The build is deterministic (fixed seeds), takes ~30–70 s on 2 cores, and is skipped when the
folder is complete; a file lock lets concurrent test processes share one build. Run it by hand
with `python tests/vllm/tiny_models.py [ROOT]`. No weights are committed.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import random
import shutil
import sys
import time

BUILD_VERSION = "v1"
"""Bump when the recipe changes, so stale caches are rebuilt."""
ROOT_ENV_VAR = "DORA_TEST_MODELS"
DEFAULT_ROOT = pathlib.Path(__file__).resolve().parents[2] / ".cache" / "tiny-models"
SEED = 0
VOCAB_SIZE = 640
TRAIN_STEPS = 200
BATCH_SIZE = 16
LEARNING_RATE = 3e-3
MAX_POSITIONS = 4096
SYSTEM_PROMPT = "Solve the math problem step by step. Put the final answer in \\boxed{}."
"""The tiny policy's system prompt; tests pass it as `VLLMSettings.system_prompt`. (The paper's
138-token prompt would triple the training time for no test benefit.)"""

EOS = "<|im_end|>"
PAD = "<|endoftext|>"
STEP_TAG = "<extra_0>"
SPECIAL_TOKENS = [PAD, "<|im_start|>", EOS, STEP_TAG]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_COMPONENTS = ("tokenizer", "policy", "prm", "embedder")


def models_root() -> pathlib.Path:
    """The cache folder: $DORA_TEST_MODELS, else <repo>/.cache/tiny-models (git-ignored)."""
    return pathlib.Path(os.environ.get(ROOT_ENV_VAR) or DEFAULT_ROOT)


def build_tiny_models(root: str | os.PathLike[str] | None = None) -> dict[str, pathlib.Path]:
    """Build (once) and return {"tokenizer", "policy", "prm", "embedder"} → model folders."""
    base = pathlib.Path(root) if root is not None else models_root()
    out = base / BUILD_VERSION
    paths = {name: out / name for name in _COMPONENTS}
    done = out / "COMPLETE"
    if done.exists():
        return paths
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent builder finishes first; we then reuse
        if done.exists():
            return paths
        started = time.perf_counter()
        _build(paths)
        done.write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1)}))
    return paths


def problem_statement(rng: random.Random) -> tuple[str, list[str], str]:
    """A random arithmetic problem, its solution steps and the answer (training data)."""
    a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
    kind = rng.randrange(3)
    if kind == 0:
        problem = f"What is {a} + {b}?"
        steps = [f"Step 1: Add {a} and {b}.", f"Step 2: {a} + {b} = {a + b}."]
        answer = a + b
    elif kind == 1:
        problem = f"Compute ({a} + {b}) \\times {c}."
        steps = [
            f"Step 1: First add: {a} + {b} = {a + b}.",
            f"Step 2: Then multiply: {a + b} \\times {c} = {(a + b) * c}.",
        ]
        answer = (a + b) * c
    else:
        problem = f"Find $x$ if $x - {a} = {b}$."
        steps = [
            f"Step 1: Add {a} to both sides.",
            f"Step 2: So $x = {b} + {a}$.",
            f"Step 3: Hence $x = {a + b}$.",
        ]
        answer = a + b
    final = f"Therefore, the final answer is: $\\boxed{{{answer}}}$. I hope it is correct."
    return problem, [*steps, final], str(answer)


def _documents(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(prompt text, solution text + EOS) pairs in the chat template's format."""
    system = SYSTEM_PROMPT
    docs = []
    for _ in range(count):
        problem, steps, _ = problem_statement(rng)
        prompt = (
            f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{problem}<|im_end|>\n<|im_start|>assistant\n"
        )
        docs.append((prompt, "\n\n".join(steps) + EOS))
    return docs


def _build(paths: dict[str, pathlib.Path]) -> None:
    import torch

    torch.manual_seed(SEED)
    threads = torch.get_num_threads()
    # One thread: this model is tiny, and on a loaded 2-core machine more threads run 10x slower.
    torch.set_num_threads(1)
    try:
        rng = random.Random(SEED)
        docs = _documents(2000, rng)
        tokenizer = _train_tokenizer([p + s for p, s in docs[:500]], paths["tokenizer"])
        policy = _train_policy(tokenizer, docs, paths["policy"])
        _save_prm(tokenizer, policy, paths["prm"])
        _save_embedder(tokenizer, paths["embedder"])
    finally:
        torch.set_num_threads(threads)


def _train_tokenizer(texts: list[str], folder: pathlib.Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[STEP_TAG],
        model_max_length=MAX_POSITIONS,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    _fresh(folder)
    tokenizer.save_pretrained(folder)
    return tokenizer


def _fresh(folder: pathlib.Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def _qwen2_config(tokenizer, **extra):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
        torch_dtype="float32",
        **extra,
    )


def _train_policy(tokenizer, docs: list[tuple[str, str]], folder: pathlib.Path):
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    model = Qwen2ForCausalLM(_qwen2_config(tokenizer))
    pad = tokenizer.convert_tokens_to_ids(PAD)
    encoded = []
    for prompt, solution in docs:
        head = tokenizer.encode(prompt, add_special_tokens=False)
        tail = tokenizer.encode(solution, add_special_tokens=False)
        # Loss on the solution only: the prompt is the same every time and would dominate.
        encoded.append((head + tail, [-100] * len(head) + tail))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=LEARNING_RATE, total_steps=TRAIN_STEPS, pct_start=0.1
    )
    order = random.Random(SEED + 1)
    model.train()
    for _ in range(TRAIN_STEPS):
        batch = order.sample(encoded, BATCH_SIZE)
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch])
        labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        mask = (labels != -100) | (ids != pad)
        loss = model(input_ids=ids, attention_mask=mask.long(), labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    _fresh(folder)
    model.generation_config = GenerationConfig(
        eos_token_id=model.config.eos_token_id, pad_token_id=pad, do_sample=True
    )
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "train_loss.txt").write_text(f"{loss.detach().item():.4f}\n")
    return model


def _save_prm(tokenizer, policy, folder: pathlib.Path) -> None:
    import torch
    from safetensors.torch import save_file

    config = _qwen2_config(tokenizer, num_labels=2)
    config.architectures = ["Qwen2ForProcessRewardModel"]
    hidden = config.hidden_size
    generator = torch.Generator().manual_seed(SEED + 2)
    tensors = {
        name: tensor.detach().clone().contiguous()
        for name, tensor in policy.state_dict().items()
        if name.startswith("model.")
    }
    tensors["score.0.weight"] = torch.randn(hidden, hidden, generator=generator) / hidden**0.5
    tensors["score.0.bias"] = torch.zeros(hidden)
    tensors["score.2.weight"] = torch.randn(2, hidden, generator=generator) / hidden**0.5
    tensors["score.2.bias"] = torch.zeros(2)
    _fresh(folder)
    config.save_pretrained(folder)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(folder)


def _save_embedder(tokenizer, folder: pathlib.Path) -> None:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(SEED + 3)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
        torch_dtype="float32",
    )
    model = BertModel(config, add_pooling_layer=False)
    model.config.architectures = ["BertModel"]
    _fresh(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


if __name__ == "__main__":
    started = time.perf_counter()
    built = build_tiny_models(sys.argv[1] if len(sys.argv) > 1 else None)
    print(json.dumps({k: str(v) for k, v in built.items()}, indent=1))
    print(f"{time.perf_counter() - started:.1f} s")
