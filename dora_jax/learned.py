"""The `learned` rule: an amortized allocator, a small permutation-equivariant network (flax nnx).

The `bayes` rule (`dora_jax.directions`) decides by inference at every call: a posterior over
directions, then the exact Eq. 7 optimum under it (≈ 20× DORA's time at K = N = 256). This rule
replaces that computation by a network trained once, in the simulator, to minimize the same
quantity — the expected failure E Π_i (1 − p_i)^{B_i} (Eqs. 5–7) — averaged over the synthetic
world's joint law of (scores, embeddings, directions, p) (`simulations.train`). A network that
minimizes the average of a loss over joint draws approximates the Bayes decision under the
posterior of the truth given what it sees; the simulator's posterior is exact where `bayes`'s is
a mean-field approximation with hand-set merge parameters.

Network (one problem; vmap at the edge)
---------------------------------------
Per candidate i, `FEATURES` values: the score R_i, its logit, (R_i − max R)/T_b, log
softmax(R/T_b)_i (REBASE's log share, Eq. 4), DORA's log γ_i at T_s = 0.01 and 0.1 (Eq. 11), R_i −
mean R, log N, log K_valid, and log κ with a flag saying whether κ is known. Pairwise, the
kernel exp((S_ij − 1)/T) over the valid j at T = 0.1, computed with ONE exponential per pair
(`similarity_kernels`), whose 10th power is DORA's exp((S_ij − 1)/T_s) at T_s = 0.01 (Eq. 11): the
row sums of both give the two log γ features. One pre-norm block of width 16 (`learned_model`):
each candidate reads the kernel-weighted mean of the others' values (the T = 0.1 kernel, which
also sees paraphrases at cosine ≈ 0.9 that T_s = 0.01 treats as distinct) and the mean over all
valid candidates, then an MLP; masked candidates send nothing and get no output. No positional
encodings: permutation-equivariant by construction. Why a fixed kernel and not query–key
attention (the /1 format had 2 layers × 4 heads of width 32 with the cosines as an attention
bias): each attention softmax is another K × K exponential, ~24× DORA's time at K = N = 256;
the kernel is the K × K work the features need anyway, so the network adds one K × K × 16
product and no exponentials (README: the per-call cost against DORA). The output logit is
c_R·R_i/T_b + c_γ·log γ_i + head(h_i), initialized (c_R = c_γ = 1, head = 0) at DORA's logit
(Eq. 12), so training starts from DORA and learns corrections. The shares softmax(logits) over
the valid candidates are apportioned to exactly N (largest remainder, as every rule). The search
round is not an input: the engine's rule contract passes none.

Checkpoints
-----------
One msgpack file (`flax.serialization`): {"format", "config": {width, layers}, "params":
the nnx.Param state as a nested dict, "step", "train": the training settings, "opt_state": the
optimizer's leaves}. Why msgpack rather than orbax: the whole checkpoint is ~30 kB, one file is
package data and one atomic write, and reading it needs no tensorstore or async machinery on the
CLI's path. Two checkpoints ship as package data, each addressable by name: "shipped" (the
default) is `dora_jax/data/learned_e2e.msgpack`, the network fine-tuned on the simulated search's
end-to-end accuracy (`dora train --finetune-from imitation`); "imitation" is
`dora_jax/data/learned.msgpack`, the first stage it starts from (trained on Eq. 7's posterior
expected failure plus an imitation term, `dora train`).

flax is imported only when a checkpoint is first loaded (`import dora_jax` stays as fast).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from dora_jax.apportion import apportion_shares, normalize
from dora_jax.rules import REBASE_TEMPERATURE, SIMILARITY_TEMPERATURE, cosine_similarity

__all__ = [
    "FEATURES",
    "FORMAT",
    "IMITATION",
    "NAMED_CHECKPOINTS",
    "SHIPPED",
    "candidate_features",
    "check_checkpoint",
    "learned",
    "learned_logits",
    "load_checkpoint",
    "resolve_checkpoint",
    "similarity_kernels",
]

FORMAT = "dora-jax-learned/2"  # /1: the attention network before issue 15's cost cut
SHIPPED = "shipped"  # the `checkpoint` value that names the packaged default
IMITATION = "imitation"  # the packaged first stage, the fine-tuning's start
# checkpoint names -> files under dora_jax/data (module doc)
NAMED_CHECKPOINTS = {SHIPPED: "learned_e2e.msgpack", IMITATION: "learned.msgpack"}
FEATURES = 11  # per-candidate inputs (module doc)
# Scales that bring the features to O(1) (no learned normalization of the inputs).
_LOGIT_SCALE = 4.0
_GAP_SCALE = 10.0
_LOG_SCALE = 6.0
_KAPPA_SCALE = 5.0
_GAP_FLOOR = -30.0  # (R − max R)/T_b below this carries no more information
_WIDE_SIMILARITY_TEMPERATURE = 0.1
# exp((S − 1)/T_s) = exp((S − 1)/0.1)^10 (`similarity_kernels`' squarings hold only for this ratio).
if abs(_WIDE_SIMILARITY_TEMPERATURE / SIMILARITY_TEMPERATURE - 10) > 1e-9:
    raise ImportError("similarity_kernels needs T_s = 0.01 (the 0.1 kernel's 10th power)")
_CLIP = 1e-6


def similarity_kernels(
    sim: Float[Array, "K K"], valid: Bool[Array, " K"]
) -> tuple[Float[Array, "K K"], Float[Array, "K 2"]]:
    """The similarity kernel exp((S_ij − 1)/0.1) over valid j, and the row sums of it and of
    exp((S_ij − 1)/T_s): −log of a row sum is log γ_i at that temperature (Eq. 11; S_ii = 1 is
    each row's maximum).

    One exponential per pair: the T_s = 0.01 kernel is the 0.1 one to the 10th power (three
    squarings and a product; equal to DORA's own exp((S − 1)/T_s) to float32 rounding), and only
    its row sums are kept.
    """
    wide = jnp.where(valid[None, :], jnp.exp((sim - 1) / _WIDE_SIMILARITY_TEMPERATURE), 0)
    square = wide * wide
    sharp = jnp.square(jnp.square(square)) * square
    sums = jnp.stack([jnp.sum(sharp, axis=1), jnp.sum(wide, axis=1)], axis=-1)
    return wide, sums


def candidate_features(
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    valid: Bool[Array, " K"],
    kernel_sums: Float[Array, "K 2"],
    kappa: Float[Array, ""],
    kappa_known: Bool[Array, ""],
) -> tuple[Float[Array, "K F"], Float[Array, "K 2"]]:
    """The per-candidate inputs (module doc) and the two terms of DORA's logit R/T_b + log γ.

    Args:
      scores: Float[K], PRM scores in [0, 1] (0 where invalid).
      budget: N (may be traced).
      valid: Bool[K].
      kernel_sums: Float[K, 2], the row sums of `similarity_kernels` (−log: log γ at T_s, 0.1).
      kappa: κ > 0 (may be traced); read only where `kappa_known`.
      kappa_known: Bool[], whether κ is known (the features' flag; may be traced).

    Returns:
      (Float[K, FEATURES] and Float[K, 2] (R/T_b, log γ): DORA's logit is their sum; 0 rows
      where invalid).
    """
    dtype = jnp.float32
    r = jnp.where(valid, scores.astype(dtype), 0)
    count = jnp.maximum(jnp.sum(valid), 1).astype(dtype)
    top = jnp.max(jnp.where(valid, r, -jnp.inf))
    top = jnp.where(jnp.isfinite(top), top, 0)
    z = r / REBASE_TEMPERATURE
    log_share = z - jax.nn.logsumexp(jnp.where(valid, z, -jnp.inf))
    log_share = jnp.where(valid & jnp.isfinite(log_share), log_share, 0)
    clipped = jnp.clip(r, _CLIP, 1 - _CLIP)
    mean = jnp.sum(r) / count
    log_gamma = jnp.where(valid[:, None], -jnp.log(jnp.maximum(kernel_sums, 1)), 0)
    gamma_sharp, gamma_wide = log_gamma[:, 0], log_gamma[:, 1]
    known = jnp.asarray(kappa_known, bool)
    safe = jnp.where(known, jnp.asarray(kappa, dtype), 1)
    log_kappa = jnp.where(known, jnp.log(safe) / _KAPPA_SCALE, 0)
    per = [
        r,
        (jnp.log(clipped) - jnp.log1p(-clipped)) / _LOGIT_SCALE,
        jnp.maximum((r - top) / REBASE_TEMPERATURE, _GAP_FLOOR) / _GAP_SCALE,
        jnp.maximum(log_share, _GAP_FLOOR) / _GAP_SCALE,
        gamma_sharp / _LOG_SCALE,
        gamma_wide / _LOG_SCALE,
        r - mean,
    ]
    shared = [
        jnp.log(jnp.asarray(budget, dtype)) / _LOG_SCALE,
        jnp.log(count) / _LOG_SCALE,
        log_kappa,
        known.astype(dtype),
    ]
    x = jnp.stack([*per, *(jnp.broadcast_to(s, r.shape) for s in shared)], axis=-1)
    base = jnp.stack([z, gamma_sharp], axis=-1)
    return jnp.where(valid[:, None], x, 0), jnp.where(valid[:, None], base, 0)


# --- checkpoints -----------------------------------------------------------------------------


def resolve_checkpoint(checkpoint: str) -> Path:
    """The file a `checkpoint` value names: a packaged one by name (`NAMED_CHECKPOINTS`), else
    the path itself."""
    if checkpoint in NAMED_CHECKPOINTS:
        return Path(__file__).parent / "data" / NAMED_CHECKPOINTS[checkpoint]
    return Path(checkpoint)


def _keys_to_ints(tree: Any) -> Any:
    """msgpack keeps dict keys as strings; nnx names list entries by int."""
    if not isinstance(tree, Mapping):
        return tree
    return {(int(k) if k.isdigit() else k): _keys_to_ints(v) for k, v in tree.items()}


def _shapes(tree: Any, prefix: str = "") -> dict[str, tuple[int, ...]]:
    if isinstance(tree, Mapping):
        out: dict[str, tuple[int, ...]] = {}
        for k, v in tree.items():
            out.update(_shapes(v, f"{prefix}{k}/"))
        return out
    return {prefix.rstrip("/"): tuple(getattr(tree, "shape", ()))}


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The raw checkpoint record; one-line ValueError on a missing or unreadable file."""
    from flax import serialization

    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path}")
    try:
        record = serialization.msgpack_restore(path.read_bytes())
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise ValueError(f"checkpoint {path} is not a dora-jax msgpack file ({error})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} is not a {FORMAT} file")
    return record


@functools.lru_cache(maxsize=8)
def load_checkpoint(checkpoint: str):
    """(graphdef, params) of the nnx model a checkpoint holds, checked against its config.

    Raises:
      ValueError: one line, on a missing file, a foreign file, or a parameter whose name or shape
        differs from what the checkpoint's config builds.
    """
    from flax import nnx

    from dora_jax import learned_model

    path = resolve_checkpoint(checkpoint)
    record = read_checkpoint(path)
    try:
        config = learned_model.ModelConfig(**dict(record["config"]))
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"checkpoint {path} has a bad model config ({error})") from None
    graphdef, abstract = nnx.split(
        nnx.eval_shape(lambda: learned_model.Allocator(config, rngs=nnx.Rngs(0))), nnx.Param
    )
    params = _keys_to_ints(record.get("params", {}))
    want, got = _shapes(nnx.to_pure_dict(abstract)), _shapes(params)
    for name in sorted(set(want) | set(got)):
        if want.get(name) != got.get(name):
            raise ValueError(
                f"checkpoint {path} does not fit the model: parameter {name} has shape "
                f"{got.get(name, 'missing')}, expected {want.get(name, 'none')}"
            )
    # NumPy arrays, not jnp: a first load may happen while a caller is being traced (allocate
    # under jit), and the cached parameters must not be that trace's values
    nnx.replace_by_pure_dict(abstract, jax.tree.map(np.asarray, params))
    return graphdef, abstract


def check_checkpoint(hyperparameters: Mapping[str, Any]) -> None:
    """The rule's eager check: the checkpoint loads and fits (one-line ValueError otherwise)."""
    checkpoint = hyperparameters.get("checkpoint", SHIPPED)
    if not isinstance(checkpoint, str):
        raise ValueError(f"checkpoint must be a file name, got {checkpoint!r}")
    load_checkpoint(checkpoint)


# --- the rule ----------------------------------------------------------------------------------


def learned_logits(
    model: Any,
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    valid: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None,
    kappa: Float[Array, ""],
    kappa_known: Bool[Array, ""],
) -> Float[Array, " K"]:
    """The network's allocation logits (−inf where invalid) for ONE problem (see
    `candidate_features` for the arguments; `model` is an `Allocator`)."""
    k = scores.shape[0]
    if embeddings is None:
        sim = jnp.eye(k, dtype=jnp.float32)
    else:
        sim = cosine_similarity(embeddings.astype(jnp.float32))
    kernel, sums = similarity_kernels(sim, valid)
    x, base = candidate_features(scores, budget, valid, sums, kappa, kappa_known)
    logits = model(x, base, kernel, 1 / jnp.maximum(sums[:, 1], 1), valid)
    return jnp.where(valid, logits, -jnp.inf)


def learned(
    key: PRNGKeyArray | None,
    scores: Float[Array, " K"],
    budget: Int[Array, ""],
    *,
    mask: Bool[Array, " K"],
    embeddings: Float[Array, "K E"] | None = None,
    checkpoint: str = SHIPPED,
    kappa: float | Float[Array, ""] | None = None,
) -> Int[Array, " K"]:
    """The amortized Bayes allocation: N apportioned by the network's shares (module doc).

    Args:
      key: optional PRNG key; breaks ties of the apportionment at random.
      scores: Float[K], PRM scores R in [0, 1].
      budget: N ≥ 1 (may be traced).
      mask: Bool[K], valid candidates; masked ones get 0.
      embeddings: Float[K, E]; None: every candidate is its own direction.
      checkpoint: "shipped" (the packaged default, fine-tuned end to end), "imitation" (its
        packaged first stage) or a checkpoint file from `dora train`
        (static; read once per process).
      kappa: the PRM reliability κ of Eq. 6 when known (may be traced); None: unknown.

    Returns:
      Int[K] (int32), ≥ 0, 0 where masked, Σ = N.
    """
    from flax import nnx

    graphdef, params = load_checkpoint(checkpoint)
    valid = mask & ~jnp.isnan(scores)
    known = jnp.asarray(kappa is not None)
    kappa = jnp.asarray(1.0 if kappa is None else kappa, jnp.float32)
    model = nnx.merge(graphdef, params)
    logits = learned_logits(
        model, jnp.where(valid, scores, 0), budget, valid, embeddings, kappa, known
    )
    shares = normalize(jax.nn.softmax(logits), valid)
    return apportion_shares(shares, budget, valid, key=key)
