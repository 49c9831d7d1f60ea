"""The cost ledger of a search and the FLOPs model that prices it.

The engine counts, per problem, what each model did: policy rollouts (steps generated) and
tokens, PRM calls and tokens read, embedding calls and tokens read. FLOPs are then priced with the
usual dense-transformer estimate (as in Snell et al. 2024, which the paper follows):

    FLOPs(model) ≈ 2 · parameters · tokens processed by that model.

Token accounting:
- policy: every generated token once (prefix caching), plus the prompt once per problem;
- PRM: each call reads the prompt and the whole partial solution; `prm_tokens` counts that
  (no cache), `prm_tokens_cached` counts only tokens the PRM has not read before on that path
  (the new step, plus the prompt once per problem) — the paper's Table 1 corresponds to a cached
  PRM;
- embedder (DORA only): each call re-reads the whole partial solution (no prompt), uncached.

Default model sizes are the paper's: policy Llama-3.2-1B-Instruct (1.24e9), PRM
Qwen2.5-Math-PRM-7B (7.6e9), embedder BGE-M3 (5.68e8).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float, Int


class Ledger(NamedTuple):
    """Per-problem counters (add a leading P under vmap)."""

    rollouts: Int[Array, ""]
    policy_tokens: Int[Array, ""]
    prm_calls: Int[Array, ""]
    prm_tokens: Int[Array, ""]
    prm_tokens_cached: Int[Array, ""]
    embed_calls: Int[Array, ""]
    embed_tokens: Int[Array, ""]

    @classmethod
    def zeros(cls) -> Ledger:
        return cls(*(jnp.zeros((), jnp.int32) for _ in cls._fields))


@dataclasses.dataclass(frozen=True)
class ModelSizes:
    """Parameter counts of the three models (the paper's defaults)."""

    policy: float = 1.24e9  # Llama-3.2-1B-Instruct; 3.21e9 for 3B, 1.54e9 for Qwen2.5-1.5B
    prm: float = 7.62e9  # Qwen2.5-Math-PRM-7B
    embedder: float = 5.68e8  # BGE-M3

    @classmethod
    def for_policy(cls, name: str) -> ModelSizes:
        sizes = {"llama-3.2-1b": 1.24e9, "llama-3.2-3b": 3.21e9, "qwen2.5-1.5b": 1.54e9}
        key = name.lower()
        if key not in sizes:
            raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(sizes)}")
        return cls(policy=sizes[key])


def flops(
    ledger: Ledger, sizes: ModelSizes = ModelSizes(), *, cached_prm: bool = True
) -> dict[str, Float[Array, "..."]]:
    """FLOPs per model and in total: 2 · parameters · tokens (works on batched ledgers)."""
    prm_tokens = ledger.prm_tokens_cached if cached_prm else ledger.prm_tokens

    def price(tokens, parameters):
        # Float tokens keep their precision (the runner passes float64); integers become float32.
        if not jnp.issubdtype(jnp.result_type(tokens), jnp.floating):
            tokens = jnp.asarray(tokens).astype(jnp.float32)
        return tokens * (2.0 * parameters)

    out = {
        "policy": price(ledger.policy_tokens, sizes.policy),
        "prm": price(prm_tokens, sizes.prm),
        "embedding": price(ledger.embed_tokens, sizes.embedder),
    }
    out["total"] = out["policy"] + out["prm"] + out["embedding"]
    return out
