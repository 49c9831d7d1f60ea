"""A `Backend` on vLLM, in-process: a policy, a PRM (or a PRM-free scorer) and an embedder.

`VLLMBackend(VLLMSettings(policy=..., prm=..., embedder=...))` builds up to three `vllm.LLM`
engines in this process and serves the search's batched calls, each as ONE engine call:

- `generate`: one `LLM.generate` over all requests. Request i becomes one prompt with
  `SamplingParams(n=request.n, seed=request.seed, temperature, top_p, stop=["\\n\\n"],
  include_stop_str_in_output=True, max_tokens=min(step_tokens, remaining))`; a `final` request
  has no stop string and `max_tokens=remaining` (the paper's last round generates to EOS).
  `remaining` = `solution_tokens` − the policy tokens of the partial solution (as in the released
  DORA code's step-level search).
- `score`: with `scorer="prm"`, one `LLM.encode(..., pooling_task="token_classify")` on the PRM
  (Qwen2.5-Math-PRM convention, the paper's §4.1); with `scorer="likelihood"`, one
  `LLM.generate` on the policy that reads prompt log-probabilities (see `score`).
- `embed`: one `LLM.embed` (a BERT-style embedder, e.g. BGE-M3), rows unit-normalised; or the
  wordllama embedder from its wheel, without vLLM (`embedder_engine="wordllama"`).
- `prompt_tokens`: tokens of the policy's templated prompt.

Prompts. The chat is [system, user problem] (`backends.datasets.build_messages`) plus the
partial solution as an assistant message, rendered by the policy's chat template with
`add_generation_prompt` when there is no text yet and `continue_final_message` afterwards (the
paper's code). Some templates trim message content (Llama-3's `| trim`), which would drop the
"\\n\\n" that ended the last step; the prompt is then completed with that whitespace so the policy
always continues its exact text (the paper's runs lost it: a documented deviation that only
matters for trimming templates; ChatML templates such as Qwen's and SmolLM2's are unaffected).
The rendered text is tokenized here without adding special tokens (templates carry their own BOS,
as in vLLM's own chat path) and sent as token ids, so the ids and their counts are exact.

Flags. A sample is `finished` when it ended by EOS (or a stop token of the model's generation
config), produced no text, or reached the per-solution token cap (`solution_tokens`, or the
model's context length); `truncated` when it ended at a cap without EOS. A step cut by the
per-step cap (`step_tokens`) is not finished: it has `tokens == step_tokens` and no trailing
delimiter, which the search may treat as a runaway step (the paper prunes those).

Usage. `usage` holds cumulative `Usage` per role ("policy", "prm", "embed"): input tokens are the
prompt tokens of each request once (its `n` samples share the prompt; vLLM's prefix caching
reuses it), output tokens are the tokens generated. The likelihood scorer runs on the policy, so
its reads count under "policy" (priced with the policy's size). `calls` counts engine calls per
role.

Importing this module does not import vLLM; the constructor does. Keep ONE backend per process on
a small machine: each engine reserves its KV cache (bound it with `kv_cache_memory_bytes`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from backends.datasets import SYSTEM_PROMPT, build_messages
from backends.protocol import Prefix, StepRequest, StepSample, Usage

__all__ = ["PRM_SYSTEM_PROMPT", "ROLES", "VLLMBackend", "VLLMSettings"]

PRM_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
"""The system message of Qwen2.5-Math-PRM's chat (the paper's `QwenFlow`)."""
ROLES = ("policy", "prm", "embed")
"""The keys of `VLLMBackend.usage`, `.calls` and `.engines`."""


@dataclasses.dataclass(frozen=True)
class VLLMSettings:
    """What to load and how to sample, score and embed (defaults: the paper's, App. D.1).

    Attributes:
        policy: the policy model (a local folder or a hub id vLLM can load).
        prm: the process reward model (a `Qwen2ForProcessRewardModel`, e.g.
            Qwen2.5-Math-PRM-7B), or None; required when `scorer == "prm"`.
        embedder: the embedding model (BERT-style, e.g. BGE-M3) for `embedder_engine="vllm"`, or
            a wordllama config name/folder for `"wordllama"` (None: the wheel's default model);
            None with `"vllm"`: no embedder (`embed` raises).
        scorer: "prm" (the paper) or "likelihood" (PRM-free: exp of the mean token log-prob of
            the last step under the policy; see `VLLMBackend.score`).
        embedder_engine: "vllm" (`LLM.embed`) or "wordllama" (no vLLM, from the wordllama wheel).
        system_prompt: the policy's system message (the paper's `SYSTEM_PROMPT`).
        temperature, top_p: sampling (0.8, 1.0).
        step_tokens: token cap per step (256).
        solution_tokens: token cap per solution (2048).
        stop: the step delimiter, kept in the output ("\\n\\n").
        prm_system_prompt: the PRM chat's system message.
        step_tag: the PRM's step separator token ("<extra_0>"); its id comes from the PRM's
            tokenizer.
        embed_max_tokens: inputs to the embedder are cut to this many tokens (the paper's
            BGE-M3 `max_length` 2048) and to the embedder's context length.
        kv_cache_memory_bytes, gpu_memory_utilization, tensor_parallel_size, enforce_eager,
            dtype, seed, distributed_executor_backend: passed to every `vllm.LLM` (None: vLLM's
            default). Bound the KV cache on CPU: unbounded, the first engine takes most memory.
        max_model_len: the policy engine's context length (None: the model's).
        policy_engine_kwargs, prm_engine_kwargs, embedder_engine_kwargs: extra `vllm.LLM`
            arguments per engine; they override the shared ones above (e.g. a larger
            `gpu_memory_utilization` for a 7B PRM than for a 1B policy).
    """

    policy: str
    prm: str | None = None
    embedder: str | None = None
    scorer: Literal["prm", "likelihood"] = "prm"
    embedder_engine: Literal["vllm", "wordllama"] = "vllm"
    system_prompt: str = SYSTEM_PROMPT
    temperature: float = 0.8
    top_p: float = 1.0
    step_tokens: int = 256
    solution_tokens: int = 2048
    stop: str = "\n\n"
    prm_system_prompt: str = PRM_SYSTEM_PROMPT
    step_tag: str = "<extra_0>"
    embed_max_tokens: int | None = 2048
    kv_cache_memory_bytes: int | None = None
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int = 1
    enforce_eager: bool = False
    dtype: str = "auto"
    seed: int = 0
    distributed_executor_backend: str | None = None
    max_model_len: int | None = None
    policy_engine_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    prm_engine_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    embedder_engine_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scorer not in ("prm", "likelihood"):
            raise ValueError(f"scorer must be 'prm' or 'likelihood', got {self.scorer!r}")
        if self.scorer == "prm" and self.prm is None:
            raise ValueError("scorer='prm' needs a PRM: set prm=<path>, or scorer='likelihood'")
        if self.embedder_engine not in ("vllm", "wordllama"):
            raise ValueError(
                f"embedder_engine must be 'vllm' or 'wordllama', got {self.embedder_engine!r}"
            )
        if self.step_tokens < 1 or self.solution_tokens < 1:
            raise ValueError(
                f"step_tokens and solution_tokens must be >= 1, got {self.step_tokens}, "
                f"{self.solution_tokens}"
            )
        if not self.stop:
            raise ValueError("stop (the step delimiter) must be a non-empty string")

    def engine_kwargs(self, role: str) -> dict[str, Any]:
        """The `vllm.LLM` keyword arguments of one engine ("policy", "prm" or "embed")."""
        shared: dict[str, Any] = {
            "tensor_parallel_size": self.tensor_parallel_size,
            "enforce_eager": self.enforce_eager,
            "dtype": self.dtype,
            "seed": self.seed,
        }
        optional = {
            "kv_cache_memory_bytes": self.kv_cache_memory_bytes,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "distributed_executor_backend": self.distributed_executor_backend,
        }
        shared.update({k: v for k, v in optional.items() if v is not None})
        if role == "policy":
            if self.max_model_len is not None:
                shared["max_model_len"] = self.max_model_len
            return {**shared, **self.policy_engine_kwargs}
        if role == "prm":
            return {**shared, "runner": "pooling", **self.prm_engine_kwargs}
        if role == "embed":
            return {**shared, "runner": "pooling", **self.embedder_engine_kwargs}
        raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")


class VLLMBackend:
    """`backends.protocol.Backend` on in-process vLLM engines (see the module docstring).

    Args:
        settings: the models and the sampling/engine settings.
        engines: engines to use instead of building them, by role ("policy", "prm", "embed"):
            e.g. to share one policy engine between a PRM-scored and a likelihood-scored backend,
            or to wrap an engine (tests count calls this way). Roles not given are built from
            `settings`.

    Attributes:
        settings: as given.
        engines: role → `vllm.LLM` (only the roles in use).
        usage: role → cumulative `Usage` (input = prompt tokens once per request, output =
            generated tokens).
        calls: role → number of engine calls.
    """

    def __init__(self, settings: VLLMSettings, *, engines: Mapping[str, Any] | None = None) -> None:
        given = dict(engines or {})
        unknown = set(given) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown engine roles {sorted(unknown)}; expected {ROLES}")
        self.settings = settings
        self.usage: dict[str, Usage] = {role: Usage() for role in ROLES}
        self.calls: dict[str, int] = dict.fromkeys(ROLES, 0)
        self.engines: dict[str, Any] = {}
        self._wordllama: Any = None

        roles = ["policy"]
        if settings.scorer == "prm":
            roles.append("prm")
        if settings.embedder_engine == "vllm" and (
            settings.embedder is not None or "embed" in given
        ):
            roles.append("embed")
        # vLLM is imported here (and in the methods), never at module import.
        for role in roles:
            self.engines[role] = given[role] if role in given else _build_engine(settings, role)
        self._wordllama_dim: int | None = None
        if settings.embedder_engine == "wordllama":
            self._wordllama = _load_wordllama(settings.embedder)
            self._wordllama_dim = int(np.asarray(self._wordllama.embed(["x"])).shape[-1])

        self._tokenizer = self.engines["policy"].get_tokenizer()
        self._max_model_len = _max_model_len(self.engines["policy"])
        self._base_prompt: dict[str, list[int]] = {}
        if "prm" in self.engines:
            self._prm_tokenizer = self.engines["prm"].get_tokenizer()
            self._step_tag_id = _token_id(self._prm_tokenizer, settings.step_tag)
        if "embed" in self.engines:
            self._embed_tokenizer = self.engines["embed"].get_tokenizer()
            self._embed_max_len = _max_model_len(self.engines["embed"])

    @property
    def embed_dim(self) -> int | None:
        """E, the width of `embed`'s rows (None without an embedder); read without a call."""
        if self._wordllama is not None:
            return self._wordllama_dim
        if "embed" not in self.engines:
            return None
        return int(self.engines["embed"].llm_engine.model_config.embedding_size)

    # ------------------------------------------------------------------ prompts

    def prompt_ids(self, prefix: Prefix) -> list[int]:
        """Policy token ids of the templated prompt that continues `prefix`."""
        return self._encode(self._render(prefix.problem, prefix.text))

    def prompt_tokens(self, problem: str) -> int:
        """Policy tokens of the templated prompt of `problem` (system + user + assistant header)."""
        return len(self._base_ids(problem))

    def solution_tokens_used(self, prefix: Prefix) -> int:
        """Policy tokens of the partial solution (its text re-tokenized; ± a few tokens of the
        sum of the sampled steps' counts where BPE merges across a step boundary)."""
        return len(self._encode(prefix.text)) if prefix.text else 0

    def _base_ids(self, problem: str) -> list[int]:
        ids = self._base_prompt.get(problem)
        if ids is None:
            if len(self._base_prompt) > 4096:  # problems of a run are few; bound the memory
                self._base_prompt.clear()
            ids = self._base_prompt[problem] = self._encode(self._render(problem, ""))
        return ids

    def _render(self, problem: str, text: str) -> str:
        messages = build_messages(problem, system_prompt=self.settings.system_prompt)
        if not text.strip():  # nothing to continue yet: open a new assistant turn
            header = self._tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            return header + text
        rendered = self._tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": text}],
            tokenize=False,
            continue_final_message=True,
        )
        if not rendered.endswith(text):
            # A trimming template dropped the trailing whitespace (the step delimiter).
            core = text.rstrip()
            if rendered.endswith(core):
                rendered += text[len(core) :]
        return rendered

    def _encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    # ------------------------------------------------------------------ generate

    def generate(self, requests: Sequence[StepRequest]) -> list[list[StepSample]]:
        """For each request, `request.n` samples of the next step (ONE `LLM.generate` call).

        Requests whose partial solution already used the whole token budget (or the context)
        get `n` empty samples, finished and truncated, without a call.
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        cfg = self.settings
        results: list[list[StepSample] | None] = [None] * len(requests)
        prompts, params, slots, remainders = [], [], [], []
        for i, request in enumerate(requests):
            if request.n < 1:
                raise ValueError(f"request {i}: n must be >= 1, got {request.n}")
            ids = self.prompt_ids(request.prefix)
            used = self.solution_tokens_used(request.prefix)
            remaining = min(cfg.solution_tokens - used, self._max_model_len - len(ids))
            if remaining <= 0:
                results[i] = [StepSample("", 0, True, True) for _ in range(request.n)]
                continue
            cap = remaining if request.final else min(cfg.step_tokens, remaining)
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            params.append(
                SamplingParams(
                    n=request.n,
                    seed=request.seed,
                    temperature=cfg.temperature,
                    top_p=cfg.top_p,
                    max_tokens=cap,
                    stop=None if request.final else [cfg.stop],
                    include_stop_str_in_output=True,
                )
            )
            slots.append(i)
            remainders.append(remaining)
        if prompts:
            outputs = self.engines["policy"].generate(prompts, params, use_tqdm=False)
            self.calls["policy"] += 1
            for i, prompt, output, remaining in zip(
                slots, prompts, outputs, remainders, strict=True
            ):
                samples = [_step_sample(c, remaining) for c in output.outputs]
                results[i] = samples
                self._add_usage(
                    "policy", len(prompt["prompt_token_ids"]), sum(s.tokens for s in samples)
                )
        return [r if r is not None else [] for r in results]

    def _add_usage(self, role: str, inputs: int, outputs: int) -> None:
        old = self.usage[role]
        self.usage[role] = Usage(old.input_tokens + inputs, old.output_tokens + outputs)

    # ------------------------------------------------------------------ score

    def score(self, prefixes: Sequence[Prefix]) -> np.ndarray:
        """Float[n] in [0, 1]: the score of each partial solution's last step (ONE call).

        `scorer="prm"` (§4.1; the released code's `QwenFlow`): the solution text is split at
        "\\n\\n" (empty pieces dropped), the pieces are joined with the step tag `<extra_0>` and
        one more tag is appended; the chat [PRM system prompt, problem, tagged steps] goes
        through the PRM's chat template; the PRM's positive-class probability at the LAST tag is
        the score (`agg_strategy="last"`). A prefix without text scores its empty first step.

        `scorer="likelihood"` (PRM-free, the paper's "natural extension"): exp of the mean
        log-probability of the last step's tokens under the policy (raw logits, temperature 1),
        in (0, 1]: the policy's own confidence in the step. One `LLM.generate` with
        `prompt_logprobs=0` and `max_tokens=1` reads the log-probs of every prompt token
        (stateless: nothing is cached from `generate`). The last step's tokens are those after
        the longest common token prefix of the prompts with and without it; a step without
        tokens (an immediate EOS) falls back to the previous step; no text at all scores 0.
        """
        if not prefixes:
            return np.zeros((0,), np.float32)
        if self.settings.scorer == "prm":
            return self._score_prm(prefixes)
        return self._score_likelihood(prefixes)

    def prm_prompt(self, prefix: Prefix) -> str:
        """The PRM's input text for `prefix` (Qwen2.5-Math-PRM convention)."""
        tag = self.settings.step_tag
        pieces = [piece for piece in prefix.text.split(self.settings.stop) if piece]
        messages = [
            {"role": "system", "content": self.settings.prm_system_prompt},
            {"role": "user", "content": prefix.problem},
            {"role": "assistant", "content": tag.join(pieces) + tag},
        ]
        return self._prm_tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=False
        )

    def _score_prm(self, prefixes: Sequence[Prefix]) -> np.ndarray:
        from vllm import PoolingParams
        from vllm.inputs import TokensPrompt

        prompts = [
            TokensPrompt(
                prompt_token_ids=list(
                    self._prm_tokenizer.encode(self.prm_prompt(p), add_special_tokens=False)
                )
            )
            for p in prefixes
        ]
        outputs = self.engines["prm"].encode(
            prompts,
            PoolingParams(step_tag_id=self._step_tag_id),
            pooling_task="token_classify",
            use_tqdm=False,
        )
        self.calls["prm"] += 1
        scores = np.empty((len(prefixes),), np.float32)
        for i, output in enumerate(outputs):
            probabilities = np.asarray(output.outputs.data.float().cpu(), np.float64)
            if probabilities.ndim != 2 or probabilities.shape[0] == 0:
                raise RuntimeError(
                    f"the PRM returned no step probabilities (shape {probabilities.shape}); is "
                    f"{self.settings.step_tag!r} (id {self._step_tag_id}) a token of its "
                    "tokenizer, and is the model a Qwen2ForProcessRewardModel?"
                )
            scores[i] = probabilities[-1, 1]  # P(positive) at the last step tag
        self._add_usage("prm", sum(len(p["prompt_token_ids"]) for p in prompts), 0)
        return scores

    def _score_likelihood(self, prefixes: Sequence[Prefix]) -> np.ndarray:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts, spans = [], []
        for prefix in prefixes:
            ids, start = self._last_step_span(prefix)
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            spans.append(start)
        # Greedy: the one sampled token is discarded; only the prompt's log-probs are read.
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = self.engines["policy"].generate(prompts, params, use_tqdm=False)
        self.calls["policy"] += 1
        scores = np.zeros((len(prefixes),), np.float32)
        for i, (prompt, start, output) in enumerate(zip(prompts, spans, outputs, strict=True)):
            ids = prompt["prompt_token_ids"]
            if start is None:
                continue
            logprobs = [
                output.prompt_logprobs[j][ids[j]].logprob for j in range(max(start, 1), len(ids))
            ]
            scores[i] = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 0.0
        self._add_usage("policy", sum(len(p["prompt_token_ids"]) for p in prompts), 0)
        return scores

    def _last_step_span(self, prefix: Prefix) -> tuple[list[int], int | None]:
        """(prompt ids of `prefix`, index of the first token of its last non-empty step)."""
        steps = prefix.steps
        while steps:
            full = self.prompt_ids(Prefix(prefix.problem, steps))
            before = self.prompt_ids(Prefix(prefix.problem, steps[:-1]))
            common = 0
            for a, b in zip(full, before, strict=False):
                if a != b:
                    break
                common += 1
            if common < len(full):
                return full, common
            steps = steps[:-1]
        return self.prompt_ids(prefix), None

    # ------------------------------------------------------------------ embed

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Float[n, E], unit rows: one embedding per text (ONE `LLM.embed` call).

        Each text is tokenized with the embedder's tokenizer (its special tokens added) and cut
        to `embed_max_tokens` and the embedder's context length.
        """
        if self._wordllama is not None:
            self.calls["embed"] += 1
            vectors = np.asarray(self._wordllama.embed(list(texts), norm=False), np.float64)
            return _unit_rows(vectors.reshape(len(texts), -1))
        if "embed" not in self.engines:
            raise RuntimeError("no embedder configured: set VLLMSettings.embedder")
        if not texts:
            return np.zeros((0, 0), np.float32)
        from vllm.inputs import TokensPrompt

        limit = self._embed_max_len
        if self.settings.embed_max_tokens is not None:
            limit = min(limit, self.settings.embed_max_tokens)
        prompts = [
            TokensPrompt(
                prompt_token_ids=list(
                    self._embed_tokenizer(text, truncation=True, max_length=limit)["input_ids"]
                )
            )
            for text in texts
        ]
        outputs = self.engines["embed"].embed(prompts, use_tqdm=False)
        self.calls["embed"] += 1
        self._add_usage("embed", sum(len(p["prompt_token_ids"]) for p in prompts), 0)
        vectors = np.asarray([o.outputs.embedding for o in outputs], np.float64)
        return _unit_rows(vectors)


# ---------------------------------------------------------------------- helpers


def _step_sample(completion: Any, remaining: int) -> StepSample:
    """A vLLM completion → StepSample (flags: see the module docstring)."""
    tokens = len(completion.token_ids)
    by_eos = completion.finish_reason == "stop" and not isinstance(completion.stop_reason, str)
    at_cap = tokens >= remaining
    finished = by_eos or at_cap or not completion.text
    return StepSample(
        text=completion.text,
        tokens=tokens,
        finished=finished,
        truncated=finished and not by_eos and at_cap,
    )


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def _build_engine(settings: VLLMSettings, role: str) -> Any:
    from vllm import LLM

    model = {"policy": settings.policy, "prm": settings.prm, "embed": settings.embedder}[role]
    if model is None:
        raise ValueError(f"no model configured for the {role} engine")
    return LLM(model=model, **settings.engine_kwargs(role))


def _max_model_len(engine: Any) -> int:
    return int(engine.llm_engine.model_config.max_model_len)


def _token_id(tokenizer: Any, token: str) -> int:
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(
            f"the step tag {token!r} is not one token of the PRM's tokenizer (ids {ids})"
        )
    return int(ids[0])


def _load_wordllama(config: str | None) -> Any:
    """WordLlama from its installed wheel, never downloading (the CPU demo's embedder)."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise ImportError("embedder_engine='wordllama' needs `pip install wordllama`")
    from wordllama import WordLlama

    package_dir = pathlib.Path(spec.origin).parent
    kwargs: dict[str, Any] = {"cache_dir": package_dir, "disable_download": True}
    if config is not None:
        kwargs["config"] = config
    return WordLlama.load(**kwargs)
