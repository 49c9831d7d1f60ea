"""A synthetic reasoning-tree world with known ground truth, in pure JAX.

A problem is a latent tree of reasoning *directions* (nodes). Every quantity attached to a node is a
deterministic function of the node's identity, so the tree is never stored: it is re-derived by
whoever sits on a node. The search engine holds N *slots* (active partial solutions of one problem;
it vmaps over problems P); every slot sits on a node, and ``expand`` moves every slot one step down.

Node identity
-------------
A node id is two uint32 words (the shape of a threefry key's data). The root's id is a hash of
the problem key, and child j of node v has id(v, j) = H(id(v), j), a 64-bit keyed hash (see
"randomness" in the code; a hash rather than jax.random.fold_in because each threefry call site
costs ~1 s of XLA compile on CPU, and the engine compiles the world once per (rule, N)). All
node-level draws (p, score, leaf, correctness, label, vector, and the GEM sticks over its children)
read uniforms from a keyed counter hash of id(v), so all copies (slots) on one node see the same
node. The only per-copy randomness is which child a copy picks, the length of its step, its
embedding's paraphrase noise, optional per-candidate PRM noise, and the completion it writes in a
forced final round. Copies on one node are paraphrases of one partial solution: same direction,
same ground truth, same final answer.

Difficulty
----------
    p(root) ~ Beta(difficulty_a, difficulty_b).

Success probability: a martingale down the tree, and the PRM (paper Eq. 6)
--------------------------------------------------------------------------
p(v) is the success probability of a rollout continued from v. A child c of v draws, from its own
id, in two stages (c = ``branch_concentration``, κ = ``kappa``):

    w'(c)        ~ Beta(c·p(v), c·(1 − p(v)))            (stage 1)
    p(c) | w'(c) ~ Beta(κ·w'(c), κ·(1 − w'(c)))          (stage 2; p(c) = w'(c) when κ = ∞)

so E[p(c) | p(v)] = E[w'(c) | p(v)] = p(v): p is a martingale along every path. The finishing time
and the token counts are independent of p, so by optional stopping a rollout from v ends correct
with probability exactly p(v)·P(not truncated). One step resolves the fraction

    f = 1/(c + 1) + c/((c + 1)(κ + 1)):    Var[p(c) | p(v)] = f·p(v)·(1 − p(v)).

The PRM score of node c (the same for all copies on c: Theorem 1's premise) is, by ``prm_mode``:

    "beta"        w(c) = w'(c). Then p(c) | w(c) ~ Beta(κw, κ(1 − w)) holds EXACTLY (Eq. 6), and
                  given the scores, the p's of distinct nodes are independent of each other and of
                  everything the search saw before: E[p | w] = w, Var[p | w] = w(1 − w)/(κ + 1).
    "logit_noise" w(c) = sigmoid(logit p(c) + σ·ε), ε ~ N(0, 1) from id(c), σ =
                  ``logit_noise_sigma``. Same p-dynamics (w' stays hidden), a different
                  observation: Eq. 6 is false — the mode that breaks the paper's model.

``candidate_score_noise`` σ_c > 0 adds per-candidate noise at each ``score`` call,
sigmoid(logit w + σ_c·ε_i), which also breaks "one score per direction". Probabilities and scores
are clipped to [1e-6, 1 − 1e-6] (a bias of at most 1e-6).

Redundancy: a Dirichlet process over a node's children
------------------------------------------------------
Node v carries truncated stick-breaking GEM(α) weights over its first M = ``max_children``
children, a function of id(v) (all copies of v share them):

    β_k ~ Beta(1, α),   π_k = β_k·Π_{j<k}(1 − β_j),   cumulative C_k = 1 − exp(−Σ_{j≤k} E_j/α)

with E_j ~ Exp(1) (since 1 − β_j = exp(−E_j/α)). Each copy draws u ~ U(0, 1) from its own key
and takes child k if C_{k−1} ≤ u < C_k, i.e. k = #{j ≤ M : S_j ≤ −α·log(1 − u)} with
S_j = Σ_{i≤j} E_i (the code adds sticks until S_j passes the copy's threshold). The leftover
mass Π_{k<M}(1 − β_k) ≈ (α/(1 + α))^M (1e-8 at the defaults) opens a new child, index
M + slot index, unique to that copy. Given the weights the copies are i.i.d., hence
exchangeable; marginally the partition of n copies is a Chinese restaurant process with
concentration α (up to the leftover mass being split into singletons), so E[#distinct children] =
Σ_{i<n} α/(α + i). α = ∞ gives C ≡ 0: every copy opens its own child (no redundancy); small α puts
many copies on one child, with very unequal sizes (the k_j of Prop. 2). All copies of a node
expand in the same round (every active slot of round t sits at depth t), so the sharing is
complete.

Depth and tokens
----------------
A node c at depth d (root: d = 0) is a leaf (its step ends with EOS) with probability

    h(d) = finish_hazard if d ≥ min_steps else 0          (drawn from id(c)),

so, before truncation and the engine's T_max, a solution has D steps with
P(D = d) = h·(1 − h)^(d − min_steps) for d ≥ min_steps, E[D] = min_steps + (1 − h)/h (8.7 at the
defaults). Each copy's step has

    tokens = clip(ceil(Gamma(k)·mean/k), 1, max_step_tokens),   k = step_tokens_shape,

(mean = ``step_tokens_mean``; ≈ 560 policy tokens per rollout at the defaults), with
Gamma(k) ≈ k·(1 − 1/(9k) + z/sqrt(9k))³, z ~ N(0, 1) (Wilson–Hilferty: ample for token counts, no
rejection loop). A path whose total reaches ``max_solution_tokens`` (2048) without EOS,
or would exceed it with EOS, is *truncated*: the step is cut to land exactly on the cap, and the
path finishes with no answer (answer −1, incorrect).

Final answers
-------------
The correct answer is 0; wrong answers are 1..A (A = ``num_wrong_answers``). Node labels:

    label(root) ~ U{1..A};   label(c) = label(v) w.p. label_keep, else ~ U{1..A}   (from id(c)),

so wrong solutions of one direction agree, as majority voting needs. A solution ending at leaf c is
correct iff U(c) < p(c), U(c) from id(c), and its answer is 0 if correct else label(c): copies on
one node give the same answer.

Forced final round (``final=True``: the reference code's "generate to EOS")
--------------------------------------------------------------------------
A copy that reaches a non-leaf c writes its own completion, drawn per copy and exact in law for the
tree below c: R more steps, R = max(0, min_steps − d − 1) + G with G ~ Geometric(h) on {1, 2, …};
correct ~ Bernoulli(p(c)) (optional stopping); if wrong, label(c) w.p. label_keep^R, else
~ U{1..A}; tokens ≈ ceil(Gamma(R·k)·mean/k) (sum of R steps, the 256 cap not applied per step: at
the defaults it bites with probability ≈ 3e-3 per step); truncation at the cap as above. The slot
stays on c.

PRM traps (``trap_rate`` > 0; off by default)
---------------------------------------------
A child is a *trap* with probability ``trap_rate`` (from its id): a direction the PRM finds
attractive that leads nowhere, e.g. a plausible wrong method. In a trap subtree (the trap and all
its descendants) every rollout ends wrong, with ONE wrong answer (the trap's label, kept by every
descendant and every completion), and every node's PRM score is high:

    p(c) = 0,   w(c) ~ Beta(κ·s, κ·(1 − s)) from id(c)   (s = ``trap_score``; w = s when κ = ∞).

p = 0 exactly (below the clip of genuine nodes) marks a trap node, so no state is added. Eq. 6
fails on traps (E[p | w] = 0, not w): the PRM is confidently wrong. A guided search finds more
traps the more it explores and prefers them, and the PRM-weighted vote counts their concentrated
wrong answer with high weight, so accuracy gains shrink with N. With ``trap_rate`` = 0 the world
draws nothing more and computes exactly what it did without traps (the code path is skipped at
trace time).

Embeddings
----------
Node vectors are unit vectors in R^E (E = ``embed_dim``): u(root) = normalize(z), and

    u(c) = ρ·u(v) + sqrt(1 − ρ²)·normalize(z − (z·u(v))·u(v)),   z ~ N(0, I_E) from id(c),

so cos(u(v), u(c)) = ρ = ``parent_child_cosine`` exactly and cosine decays with tree distance
(ancestor k levels up: ρ^k; siblings: ρ² on average). A candidate's embedding adds paraphrase
noise orthogonal to its node vector, drawn per slot at each ``embed`` call:

    e_i = (u + s·n_i)/sqrt(1 + s²),   n_i ⊥ u a uniform unit vector,   s² = 1/c_w − 1,

(c_w = ``within_cosine``), so E[e_i·e_j] = c_w for two candidates on one node and c_w·(u_a·u_b) for
candidates on nodes a, b; the within cosine has standard deviation ≈ (1 − c_w)/sqrt(E − 1). Under
DORA's T_s = 0.01 a direction of k copies has soft size n_eff ≈ 1 + (k − 1)·exp(−(1 − c_w)/T_s)
(the paper's Eq. 11, §3.3): c_w = 0.998 merges (0.82 per duplicate), c_w = 0.9 does not
(4.5e-5); siblings at ρ² = 0.9 add exp(−10) ≈ 5e-5 each.

Interface (what the engine calls)
---------------------------------
``sample_problem(key, config)`` → Problem; ``init_slots(problem, config, N)`` → Slots (N copies of
the root); ``expand(key, problem, slots, config, *, final)`` → (Slots, Step);
``score(key, problem, slots, config)`` → [N]; ``embed(key, problem, slots, config)`` → [N, E];
``prompt_tokens(config)``. Slots is a plain pytree of arrays with leading axis N, so the engine
re-slots with ``jax.tree.map(lambda x: x[parent], slots)``. Keys may be typed or raw; expand,
score and embed read different streams of their key, so one key may even serve all three.
``expand_path(key, problem, slot, index, config, *, final)`` and ``score_path(key, problem, slot,
index, config)`` are slot ``index`` of ``expand`` and ``score`` on its own (``expand`` and
``score`` vmap them over the slots), for an engine that runs the paths of a non-reallocating rule
independently.
WorldConfig is a frozen, hashable dataclass: a static argument. New keys or problems never
recompile.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, UInt32

from dora_jax import counter_rng as rng
from dora_jax.base import Step
from dora_jax.paper_worlds import PAPER_WORLDS

__all__ = [
    "PRESETS",
    "PRM_MODES",
    "Problem",
    "Slots",
    "Step",
    "WorldConfig",
    "describe",
    "direction_id",
    "embed",
    "expand",
    "expand_path",
    "init_slots",
    "preset",
    "prompt_tokens",
    "sample_problem",
    "score",
    "score_path",
]

PrmMode = Literal["beta", "logit_noise"]
PRM_MODES: tuple[str, ...] = ("beta", "logit_noise")

# Probabilities and scores live in [_CLIP, 1 - _CLIP]: keeps Beta parameters > 0 and logits finite.
_CLIP = 1e-6


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Knobs of the synthetic world (hashable: pass as a static argument). Defaults = "paper-like".

    Attributes:
      difficulty_a, difficulty_b: Beta prior of p(root). Default Beta(0.4, 0.8): mean 1/3 and
        U-shaped, many problems nearly hopeless or nearly sure, as MATH is for a 1B policy.
      branch_concentration: c, stage-1 concentration w' ~ Beta(c·p, c·(1 − p)); larger = p moves
        less per step.
      kappa: κ, stage-2 concentration p ~ Beta(κ·w', κ·(1 − w')); the paper's PRM reliability
        (Eq. 6) in mode "beta". ``math.inf`` means p = w'. With the defaults c = 30, κ = 15 one
        step resolves f ≈ 0.093 of p(1 − p) (≈ 58% over a 9-step solution), the PRM sees a third
        of each step's movement, and p | w has standard deviation ≤ 0.125. (Eq. 6 ties the two:
        a PRM with small κ forces p to jump by ≈ 1/(κ + 1) of p(1 − p) per step, so small κ
        also means a tree that resolves within a few steps.)
      prm_mode: "beta" (Eq. 6 holds exactly) or "logit_noise" (score = sigmoid(logit p + σ·ε)).
      logit_noise_sigma: σ of mode "logit_noise".
      candidate_score_noise: σ_c of per-candidate logit noise added by ``score`` (0 = none).
      alpha: DP concentration of a node's children (``math.inf`` = every copy opens a new child).
      max_children: M, truncation of the stick-breaking weights (leftover mass → fresh children).
      min_steps: no solution ends before this many steps.
      finish_hazard: h, probability that a node at depth ≥ min_steps ends the solution.
      step_tokens_mean, step_tokens_shape: Gamma law of the tokens of one step (before the caps).
      max_step_tokens: cap per step (256 in the paper's code).
      max_solution_tokens: cap per solution (2048); reaching it without EOS truncates the path.
      prompt_tokens: tokens of the problem statement (for the engine's PRM/embedding ledger).
      embed_dim: E, width of the embeddings.
      within_cosine: c_w, expected cosine of two candidates on the same node.
      parent_child_cosine: ρ, cosine of the node vectors of a parent and its child.
      num_wrong_answers: A, wrong answers have ids 1..A.
      label_keep: probability that a child keeps its parent's wrong-answer label.
      trap_rate: probability that a child is a PRM trap (module doc; 0 = no traps).
      trap_score: s, the mean PRM score of a trap's nodes.
    """

    difficulty_a: float = 0.4
    difficulty_b: float = 0.8
    branch_concentration: float = 30.0
    kappa: float = 15.0
    prm_mode: PrmMode = "beta"
    logit_noise_sigma: float = 1.0
    candidate_score_noise: float = 0.0
    alpha: float = 3.0
    max_children: int = 64
    min_steps: int = 3
    finish_hazard: float = 0.15
    step_tokens_mean: float = 64.0
    step_tokens_shape: float = 2.0
    max_step_tokens: int = 256
    max_solution_tokens: int = 2048
    prompt_tokens: int = 100
    embed_dim: int = 32
    within_cosine: float = 0.998
    parent_child_cosine: float = 0.95
    num_wrong_answers: int = 16
    label_keep: float = 0.85
    trap_rate: float = 0.0
    trap_score: float = 0.9

    def __post_init__(self):
        def positive(name, allow_inf=False):
            v = getattr(self, name)
            if math.isnan(v) or v <= 0 or (math.isinf(v) and not allow_inf):
                raise ValueError(f"WorldConfig.{name} must be > 0, got {v}")

        for name in (
            "difficulty_a",
            "difficulty_b",
            "branch_concentration",
            "step_tokens_mean",
            "step_tokens_shape",
        ):
            positive(name)
        positive("kappa", allow_inf=True)
        positive("alpha", allow_inf=True)
        if self.prm_mode not in PRM_MODES:
            raise ValueError(
                f"WorldConfig.prm_mode must be one of {PRM_MODES}, got {self.prm_mode!r}"
            )
        for name in ("logit_noise_sigma", "candidate_score_noise"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"WorldConfig.{name} must be finite and >= 0, got {v}")
        if not 0 < self.finish_hazard <= 1:
            raise ValueError(
                f"WorldConfig.finish_hazard must be in (0, 1], got {self.finish_hazard}"
            )
        if not 0 < self.within_cosine <= 1:
            raise ValueError(
                f"WorldConfig.within_cosine must be in (0, 1], got {self.within_cosine}"
            )
        if not 0 <= self.parent_child_cosine <= 1:
            raise ValueError(
                f"WorldConfig.parent_child_cosine must be in [0, 1], got {self.parent_child_cosine}"
            )
        if not 0 <= self.label_keep <= 1:
            raise ValueError(f"WorldConfig.label_keep must be in [0, 1], got {self.label_keep}")
        if not 0 <= self.trap_rate < 1:
            raise ValueError(f"WorldConfig.trap_rate must be in [0, 1), got {self.trap_rate}")
        if not 0 < self.trap_score < 1:
            raise ValueError(f"WorldConfig.trap_score must be in (0, 1), got {self.trap_score}")
        for name in (
            "max_children",
            "max_step_tokens",
            "max_solution_tokens",
            "num_wrong_answers",
            "embed_dim",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"WorldConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("min_steps", "prompt_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"WorldConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.embed_dim < 2:
            raise ValueError(f"WorldConfig.embed_dim must be >= 2, got {self.embed_dim}")


PRESETS: dict[str, WorldConfig] = {
    # Every rollout opens a new direction: no redundancy (DORA ≈ REBASE).
    "independent": WorldConfig(alpha=math.inf),
    # Strong redundancy: n copies of a node fall on ~ln(n) children of very unequal sizes.
    "redundant": WorldConfig(alpha=1.0),
    # The defaults: moderate redundancy, PRM moderately reliable, duplicates mergeable at T_s=0.01.
    "paper-like": WorldConfig(),
    # A near-perfect PRM: p | w has standard deviation ≤ 0.035.
    "reliable-prm": WorldConfig(kappa=200.0),
    # Duplicates are paraphrases (within cosine 0.9): T_s = 0.01 cannot merge them.
    "paraphrase": WorldConfig(within_cosine=0.9),
    # A PRM outside the paper's model: logit-normal noise around p, Eq. 6 false.
    "noisy-prm": WorldConfig(prm_mode="logit_noise", logit_noise_sigma=1.0),
    # Fitted to the paper's baseline curves, one per policy model × dataset
    # ("paper-llama-1b-math500", …): data generated by papers.fit (dora_jax.paper_worlds).
    **{name: WorldConfig(**fields) for name, fields in PAPER_WORLDS.items()},
}


# Knobs left out of `describe` while they are off (the world is then the one before they existed).
_OFF_UNLESS = {"trap_rate": ("trap_rate", "trap_score")}


def describe(config: WorldConfig) -> dict[str, float | int | str]:
    """The config's fields as a dict for a run's fingerprint, without the trap knobs while
    trap_rate = 0: a world without traps is described (and fingerprinted) as before they
    existed, so runs recorded then are still reused."""
    out = dataclasses.asdict(config)
    for switch, names in _OFF_UNLESS.items():
        if not getattr(config, switch):
            for name in names:
                del out[name]
    return out


def preset(name: str) -> WorldConfig:
    """The named preset; raises ValueError listing the names on unknown input."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown world preset {name!r}; choose one of {sorted(PRESETS)}"
        ) from None


def prompt_tokens(config: WorldConfig) -> int:
    """Tokens of the problem statement (read by the PRM and, where counted, the embedder)."""
    return config.prompt_tokens


class Problem(NamedTuple):
    """One problem. Shapes without the engine's leading problem axis P.

    Attributes:
      key: UInt32[2] id of the root node: the problem's identity.
      p_root: Float32[] p(root), the probability that a rollout from scratch ends correct
        (up to truncation).
    """

    key: UInt32[Array, " 2"]
    p_root: Float[Array, ""]


class Slots(NamedTuple):
    """State of N active partial solutions of one problem; every leaf has leading axis N.

    Attributes:
      node: UInt32[N, 2] id of the node each slot sits on.
      depth: Int32[N] steps taken (root = 0).
      p: Float32[N] p(node), the ground-truth success probability.
      w: Float32[N] the node's PRM score before per-candidate noise (root: p_root).
      label: Int32[N] the node's wrong-answer label in 1..A.
      vector: Float32[N, E] the node's unit direction vector.
      tokens: Int32[N] policy tokens generated so far on this path (prompt excluded).
    """

    node: UInt32[Array, "N 2"]
    depth: Int[Array, " N"]
    p: Float[Array, " N"]
    w: Float[Array, " N"]
    label: Int[Array, " N"]
    vector: Float[Array, "N E"]
    tokens: Int[Array, " N"]


# ---------------------------------------------------------------------------------------------
# randomness: keyed counter-hash streams (`dora_jax.counter_rng`), one tag per use of a key.
# Child ids are the same hash of (parent id, child index). Token counts use the Wilson–Hilferty
# approximation (_gamma_tokens); p and the scores use the exact Gamma sampler.

_STREAM_VALUES = 1  # a node's own quantities (p, score, leaf, correct, label, vector)
_STREAM_STICKS = 2  # a node's GEM(α) weights over its children
_STREAM_COPY = 3  # the copies' own draws in `expand`
_STREAM_DIFFICULTY = 4
_STREAM_SCORE = 5
_STREAM_EMBED = 6
_STREAM_ROOT = 7
_STREAM_CHILD = 8


def _layout(**sizes: int) -> tuple[dict[str, slice], int]:
    """Consecutive named slices of a vector of uniforms, and its total length."""
    fields, start = {}, 0
    for name, size in sizes.items():
        fields[name] = slice(start, start + size)
        start += size
    return fields, start


def _node_layout(config: WorldConfig) -> tuple[dict[str, slice], int]:
    # The trap's uniforms come last, and only with traps on: the other fields read the same words
    # whatever trap_rate is.
    traps = {"trap": 1, "trap_w": 2 * rng.GAMMA_UNIFORMS} if config.trap_rate > 0 else {}
    return _layout(
        branch=2 * rng.GAMMA_UNIFORMS,
        p=2 * rng.GAMMA_UNIFORMS,
        score=1,
        leaf=1,
        correct=1,
        keep=1,
        new_label=1,
        vector=config.embed_dim,
        **traps,
    )


_COPY, _COPY_SIZE = _layout(
    choice=1, step_tokens=1, extra_tokens=1, steps=1, correct=1, keep=1, new_label=1
)


def _child_id(node: UInt32[Array, " 2"], index: Int[Array, ""]) -> UInt32[Array, " 2"]:
    """id(v, j): a 64-bit keyed hash of (id(v), j)."""
    return rng.bits(jnp.append(node, index.astype(jnp.uint32)), _STREAM_CHILD, (2,))


def _gamma_tokens(
    u: Float[Array, ""], shape_param: Float[Array, ""], config: WorldConfig
) -> Float[Array, ""]:
    """Unrounded token count ≈ Gamma(shape_param)·step_tokens_mean/step_tokens_shape.

    Wilson–Hilferty: Gamma(k) ≈ k·(1 − 1/(9k) + z/sqrt(9k))³, z ~ N(0, 1) — one normal and no
    rejection (token counts need not be exact Gamma; p and the scores use the exact sampler).
    """
    k = jnp.asarray(shape_param, jnp.float32)
    nine_k = 9.0 * k
    base = jnp.maximum(1.0 - 1.0 / nine_k + rng.normal(u) * jax.lax.rsqrt(nine_k), 0.0)
    scale = config.step_tokens_mean / config.step_tokens_shape
    return k * base**3 * jnp.float32(scale)


def _label(u: Float[Array, ""], config: WorldConfig) -> Int[Array, ""]:
    """A uniform wrong-answer label in 1..A."""
    a = config.num_wrong_answers
    return 1 + jnp.minimum(jnp.floor(u * a).astype(jnp.int32), a - 1)


def _node_values(
    digest: UInt32[Array, " 2"], config: WorldConfig
) -> dict[str, Float[Array, "..."]]:
    """The named uniforms of a node's own quantities (digest: rng.digest(id, _STREAM_VALUES))."""
    fields, size = _node_layout(config)
    u = rng.open_uniform(rng.words(digest, jnp.arange(size, dtype=jnp.uint32)))
    return {name: u[sl] for name, sl in fields.items()}


# ---------------------------------------------------------------------------------------------
# helpers


def _clip_prob(x: Float[Array, "..."]) -> Float[Array, "..."]:
    return jnp.clip(x, _CLIP, 1.0 - _CLIP)


def _logit(x: Float[Array, "..."]) -> Float[Array, "..."]:
    return jnp.log(x) - jnp.log1p(-x)


# XLA's reduce adds in a different order for different batch shapes (it does on CPU), so row i of a
# batched call would differ from problem i run alone in the last bit of every vector. Sums over E
# are therefore a fixed pairwise tree of slice-adds: elementwise operations, which add in the same
# order whatever the batch and vectorize (a cumulative sum, reduce_window, also adds in a fixed
# order but costs ~8× more on CPU). (XLA may still contract a·b + c into an FMA differently for
# different shapes, so bitwise batch invariance of floats is likely, not guaranteed; the discrete
# outcomes depend on it only through comparisons of a uniform with a float, flipped with
# probability ~1e-7.)


def _sum_last(x: Float[Array, "*S E"]) -> Float[Array, "*S"]:
    """Σ over the last axis in a fixed pairwise order: halves added elementwise (an odd last
    element carried to the next level) until one is left."""
    while x.shape[-1] > 1:
        half = x.shape[-1] // 2
        pairs = x[..., :half] + x[..., half : 2 * half]
        x = pairs if x.shape[-1] % 2 == 0 else jnp.concatenate([pairs, x[..., -1:]], axis=-1)
    return x[..., 0]


def _normalize(x: Float[Array, "*S E"]) -> Float[Array, "*S E"]:
    return x / jnp.sqrt(_sum_last(x * x))[..., None]


def _once(z: Float[Array, "*S E"], u: Float[Array, "*S E"]) -> Float[Array, "*S E"]:
    """z itself (z / 1 is exact), computed once however many fusions read it.

    XLA on CPU fuses a chain of cheap elementwise operations (the hash and the inverse-CDF
    polynomial of a normal) into every consumer of its result, and the pairwise sums over E have
    several consumers, so without this each normal was recomputed ~5 times (~2.4x the cost of the
    whole embedding). A divide is an "expensive" operation that XLA never duplicates, so it ends
    the chain in one buffer; the divisor 1 + 0·u (u finite) is not a constant XLA can fold away.
    `lax.optimization_barrier` would say this directly but the CPU compiler drops it before fusion.
    """
    return z / (1.0 + 0.0 * u)


def _orthogonal_unit(z: Float[Array, "*S E"], u: Float[Array, "*S E"]) -> Float[Array, "*S E"]:
    """The direction of z's component orthogonal to the unit vector u (uniform if z ~ N(0, I))."""
    z = _once(z, u)
    return _normalize(z - _sum_last(z * u)[..., None] * u)


def direction_id(slots: Slots) -> Int[Array, " N"]:
    """A 31-bit hash of each slot's node id (same node → same id; distinct nodes collide with
    probability ≈ 2^-31 per pair). Equals `Step.direction` of the step that reached the node."""
    return rng.hash31(slots.node)


def _hazard(depth: Int[Array, ""], config: WorldConfig) -> Float[Array, ""]:
    return jnp.where(depth >= config.min_steps, jnp.float32(config.finish_hazard), jnp.float32(0.0))


# ---------------------------------------------------------------------------------------------
# public interface


def sample_problem(key: PRNGKeyArray, config: WorldConfig) -> Problem:
    """Draws one problem: a root id and p(root) ~ Beta(difficulty_a, difficulty_b).

    Args:
      key: a PRNG key (typed or raw).
      config: the world (static).
    Returns:
      Problem with key UInt32[2] and p_root Float32[].
    """
    key_data = rng.key_data(key)
    root = rng.bits(key_data, _STREAM_ROOT, (2,))
    a, b = jnp.float32(config.difficulty_a), jnp.float32(config.difficulty_b)
    p_root = rng.beta(rng.digest(key_data, _STREAM_DIFFICULTY), 0, a, b)
    return Problem(key=root, p_root=_clip_prob(p_root))


def init_slots(problem: Problem, config: WorldConfig, num_slots: int) -> Slots:
    """N copies of the root (the empty solution).

    Args:
      problem: Problem (no leading axis).
      config: the world (static).
      num_slots: N (static).
    Returns:
      Slots with leading axis N.
    """
    values = _node_values(rng.digest(problem.key, _STREAM_VALUES), config)
    label = _label(values["new_label"][0], config)
    vector = _normalize(rng.normal(values["vector"]))
    p = jnp.asarray(problem.p_root, jnp.float32)
    n = num_slots
    return Slots(
        node=jnp.broadcast_to(problem.key, (n, *problem.key.shape)),
        depth=jnp.zeros((n,), jnp.int32),
        p=jnp.broadcast_to(p, (n,)),
        w=jnp.broadcast_to(p, (n,)),
        label=jnp.broadcast_to(label, (n,)),
        vector=jnp.broadcast_to(vector, (n, config.embed_dim)),
        tokens=jnp.zeros((n,), jnp.int32),
    )


# Sticks every copy adds before the stragglers split off: P(K ≥ k) = (α/(1 + α))^k sticks are
# needed, so at α = 3 (the default) 8 leave 10% of the copies, at α = 1 0.4%; and the stragglers
# looped together per round, a fraction of the batch (the compacted batch).
_STICKS_UNROLLED = 8
_STICKS_BUFFER_FRACTION = 8


@functools.cache
def _count_sticks(m: int) -> Callable[..., Int[Array, "*S"]]:
    """(digest [*S, 2], t [*S]) -> k [*S]: the number of partial sums S_k = Σ_{j≤k} E_j ≤ t
    (k ≤ m), stick j (E_j ~ Exp(1)) read from word j − 1 of the node's stick stream.

    The sticks are added one at a time until the first S_k > t; a copy needs 1 + α sticks on
    average but the batch's slowest ~ln(P·N)/ln(1 + 1/α) (~40 at P·N = 51200, α = 3), so every
    copy adds the first few as straight-line code and the rest loop alone (`rng.settle` over the
    whole vmapped batch). Stick j is the same word however the loop is split.
    """

    def below(state, consts):  # S_k <= t so far: k = count, s = S_k
        k, s = state
        _, t = consts
        return (k < m) & (s <= t)

    def add_stick(state, consts):
        k, s = state
        digest, t = consts
        e = -jnp.log(rng.open_uniform(rng.words(digest, k.astype(jnp.uint32))))  # E_{k+1}
        s = s + e
        return jnp.where(s <= t, k + 1, k), jnp.where(s <= t, s, jnp.inf)

    @rng.whole_batch
    def count(digest: UInt32[Array, "*S 2"], t: Float[Array, "*S"]) -> Int[Array, "*S"]:
        shape = t.shape
        consts = (digest.reshape(-1, 2), t.reshape(-1))
        n = consts[1].shape[0]
        init = (jnp.zeros((n,), jnp.int32), jnp.zeros((n,), jnp.float32))
        k, _ = rng.settle(
            add_stick,
            below,
            init,
            consts,
            unrolled=min(_STICKS_UNROLLED, m),
            buffer=max(1, n // _STICKS_BUFFER_FRACTION),
        )
        return k.reshape(shape)

    return count


def _child_index(
    node: UInt32[Array, " 2"], u: Float[Array, ""], slot_index: Int[Array, ""], config: WorldConfig
) -> Int[Array, ""]:
    """The child a copy picks: the node's GEM(α) sticks, then the copy's uniform u."""
    m = config.max_children
    fresh = jnp.int32(m) + slot_index.astype(jnp.int32)
    if math.isinf(config.alpha):
        return fresh
    # The child k with C_{k-1} <= u < C_k is the number of k <= M with C_k <= u, i.e. with
    # S_k = Σ_{j<=k} E_j <= t = −α·log(1 − u) (module doc), found by adding sticks until the first
    # S_k > t (`_count_sticks`) instead of drawing all M sticks of every copy.
    digest = rng.digest(node, _STREAM_STICKS)
    t = -jnp.float32(config.alpha) * jnp.log1p(-u)
    k = _count_sticks(m)(digest, t)
    return jnp.where(k < m, k, fresh)


def _child(
    child: UInt32[Array, " 2"],
    p: Float[Array, ""],
    label: Int[Array, ""],
    vector: Float[Array, " E"],
    depth: Int[Array, ""],
    config: WorldConfig,
):
    """Node-level quantities of a child, from its id and its parent's state."""
    digest = rng.digest(child, _STREAM_VALUES)
    v = _node_values(digest, config)
    fields, _ = _node_layout(config)
    c = config.branch_concentration
    w_hidden = _clip_prob(rng.beta(digest, fields["branch"].start, c * p, c * (1.0 - p)))
    if math.isinf(config.kappa):
        p_child = w_hidden
    else:
        kappa = config.kappa
        p_child = _clip_prob(
            rng.beta(digest, fields["p"].start, kappa * w_hidden, kappa * (1.0 - w_hidden))
        )
    if config.prm_mode == "beta":
        w_child = w_hidden
    else:
        eps = rng.normal(v["score"][0])
        w_child = _clip_prob(jax.nn.sigmoid(_logit(p_child) + config.logit_noise_sigma * eps))

    keep = v["keep"][0] < config.label_keep
    label_child = jnp.where(keep, label, _label(v["new_label"][0], config))
    if config.trap_rate > 0:
        in_trap = p <= 0.0  # the parent is a trap node (module doc: p = 0 marks one)
        trap = in_trap | (v["trap"][0] < config.trap_rate)
        mean = config.trap_score
        if math.isinf(config.kappa):
            w_trap = jnp.float32(mean)
        else:
            a = jnp.float32(config.kappa * mean)
            b = jnp.float32(config.kappa * (1.0 - mean))
            w_trap = _clip_prob(rng.beta(digest, fields["trap_w"].start, a, b))
        p_child = jnp.where(trap, jnp.float32(0.0), p_child)
        w_child = jnp.where(trap, w_trap, w_child)
        label_child = jnp.where(in_trap, label, label_child)

    rho = config.parent_child_cosine
    fresh = _orthogonal_unit(rng.normal(v["vector"]), vector)
    # unit up to rounding (fresh ⊥ vector); the error contracts by ρ² per level, no renormalising
    vector_child = rho * vector + math.sqrt(1.0 - rho * rho) * fresh

    depth_child = depth + 1
    leaf = v["leaf"][0] < _hazard(depth_child, config)
    correct = v["correct"][0] < p_child
    return p_child, w_child, label_child, vector_child, depth_child, leaf, correct


def _completion(
    u: dict[str, Float[Array, "..."]],
    p: Float[Array, ""],
    label: Int[Array, ""],
    depth: Int[Array, ""],
    config: WorldConfig,
):
    """One copy's own continuation from a non-leaf node to EOS (exact in law, see module doc)."""
    h = config.finish_hazard
    forced = jnp.maximum(config.min_steps - depth - 1, 0).astype(jnp.float32)
    if h >= 1.0:
        geometric = jnp.float32(1.0)
    else:
        geometric = 1.0 + jnp.floor(jnp.log(u["steps"][0]) / jnp.float32(math.log1p(-h)))
    # Every step has >= 1 token, so more steps than the token cap always truncate.
    steps = jnp.minimum(forced + geometric, jnp.float32(config.max_solution_tokens + 1))
    raw = _gamma_tokens(u["extra_tokens"][0], steps * jnp.float32(config.step_tokens_shape), config)
    tokens = jnp.ceil(jnp.minimum(raw, jnp.float32(config.max_solution_tokens + 1)))
    tokens = jnp.maximum(tokens, steps).astype(jnp.int32)
    correct = u["correct"][0] < p
    keep = u["keep"][0] < jnp.float32(config.label_keep) ** steps
    if config.trap_rate > 0:
        keep = keep | (p <= 0.0)  # a trap's completions all give the trap's answer
    final_label = jnp.where(keep, label, _label(u["new_label"][0], config))
    return tokens, correct, final_label


def _expand_one(
    copy_u: Float[Array, " W"],
    slot_index: Int[Array, ""],
    slot: Slots,
    final: Bool[Array, ""],
    config: WorldConfig,
) -> tuple[Slots, Step]:
    """One slot's step: pick a child, derive it, draw the copy's tokens, finish or not."""
    u = {name: copy_u[s] for name, s in _COPY.items()}
    index = _child_index(slot.node, u["choice"][0], slot_index, config)
    child = _child_id(slot.node, index)
    p, w, label, vector, depth, leaf, node_correct = _child(
        child, slot.p, slot.label, slot.vector, slot.depth, config
    )

    raw = _gamma_tokens(u["step_tokens"][0], jnp.float32(config.step_tokens_shape), config)
    step_tokens = jnp.clip(jnp.ceil(raw), 1, config.max_step_tokens).astype(jnp.int32)
    extra_tokens, copy_correct, copy_label = _completion(u, p, label, depth, config)
    completes = final & ~leaf
    eos = leaf | final
    generated = step_tokens + jnp.where(completes, extra_tokens, 0)
    cap = config.max_solution_tokens
    total = slot.tokens + generated
    truncated = (total > cap) | (~eos & (total >= cap))
    generated = jnp.where(truncated, jnp.maximum(cap - slot.tokens, 0), generated)
    finished = eos | truncated
    answered = finished & ~truncated
    correct = answered & jnp.where(completes, copy_correct, node_correct)
    wrong_label = jnp.where(completes, copy_label, label)
    answer = jnp.where(answered, jnp.where(correct, 0, wrong_label), -1).astype(jnp.int32)

    new_slot = Slots(
        node=child,
        depth=depth,
        p=p,
        w=w,
        label=label,
        vector=vector,
        tokens=slot.tokens + generated,
    )
    step = Step(
        finished=finished,
        correct=correct,
        answer=answer,
        tokens=generated,
        direction=rng.hash31(child),
    )
    return new_slot, step


def expand(
    key: PRNGKeyArray,
    problem: Problem,
    slots: Slots,
    config: WorldConfig,
    *,
    final: Bool[Array, ""] | bool = False,
) -> tuple[Slots, Step]:
    """Every slot generates one step (the engine masks dead slots itself).

    Args:
      key: a PRNG key (typed or raw) for the copies' own draws (child choice, step length,
        final-round completion).
      problem: Problem (unused: every node-level quantity derives from the slots' node ids).
      slots: Slots with leading axis N.
      config: the world (static).
      final: Bool[] (may be traced) — every path finishes this step ("generate to EOS").
    Returns:
      (Slots at the nodes reached, leading axis N; Step, leading axis N).
    """
    n = slots.depth.shape[0]
    return jax.vmap(lambda i, s: expand_path(key, problem, s, i, config, final=final))(
        jnp.arange(n, dtype=jnp.int32), slots
    )


def expand_path(
    key: PRNGKeyArray,
    problem: Problem,
    slot: Slots,
    index: Int[Array, ""],
    config: WorldConfig,
    *,
    final: Bool[Array, ""] | bool = False,
) -> tuple[Slots, Step]:
    """The step of ONE slot, slot `index` of `expand(key, …)`: the same words of `key`'s copy
    stream (word j of slot i is counter i·W + j, whatever the number of slots), so a path run on
    its own takes exactly the steps it takes among its problem's N slots.

    Args:
      key: the round's key, as for `expand`.
      problem: Problem (unused).
      slot: Slots without the leading axis.
      index: Int32[] the slot's index i (may be traced).
      config: the world (static).
      final: Bool[] (may be traced) — the path finishes this step.
    Returns:
      (Slots without the leading axis; Step without the leading axis).
    """
    del problem
    index = jnp.asarray(index, jnp.int32)
    counter = index.astype(jnp.uint32) * jnp.uint32(_COPY_SIZE) + jnp.arange(
        _COPY_SIZE, dtype=jnp.uint32
    )
    copy_u = rng.open_uniform(rng.words(rng.digest(rng.key_data(key), _STREAM_COPY), counter))
    return _expand_one(copy_u, index, slot, jnp.asarray(final, dtype=bool), config)


def score(
    key: PRNGKeyArray, problem: Problem, slots: Slots, config: WorldConfig
) -> Float[Array, " N"]:
    """PRM score of each partial solution (its last step), in (0, 1).

    Noise-free, all copies on a node share the node's score w; with candidate_score_noise σ_c > 0
    slot i gets sigmoid(logit(w_i) + σ_c·ε_i), ε_i ~ N(0, 1) from `key`.

    Args:
      key: a PRNG key (typed or raw), used only when candidate_score_noise > 0.
      problem: Problem (unused).
      slots: Slots with leading axis N.
      config: the world (static).
    Returns:
      Float32[N].
    """
    n = slots.w.shape[0]
    return jax.vmap(lambda i, s: score_path(key, problem, s, i, config))(
        jnp.arange(n, dtype=jnp.int32), slots
    )


def score_path(
    key: PRNGKeyArray, problem: Problem, slot: Slots, index: Int[Array, ""], config: WorldConfig
) -> Float[Array, ""]:
    """The PRM score of ONE slot, slot `index` of `score(key, …)` (its noise is word `index` of
    `key`'s score stream).

    Args:
      key: a PRNG key (typed or raw), used only when candidate_score_noise > 0.
      problem: Problem (unused).
      slot: Slots without the leading axis.
      index: Int32[] the slot's index (may be traced).
      config: the world (static).
    Returns:
      Float32[].
    """
    del problem
    w = slot.w
    if config.candidate_score_noise == 0.0:
        return w
    counter = jnp.asarray(index, jnp.int32).astype(jnp.uint32)
    u = rng.open_uniform(rng.words(rng.digest(rng.key_data(key), _STREAM_SCORE), counter))
    eps = rng.normal(u)
    return _clip_prob(jax.nn.sigmoid(_logit(w) + config.candidate_score_noise * eps))


def embed(
    key: PRNGKeyArray, problem: Problem, slots: Slots, config: WorldConfig
) -> Float[Array, "N E"]:
    """Unit-norm embedding of each partial solution: its node vector plus paraphrase noise.

    e_i = (u_i + s·n⊥_i)/sqrt(1 + s²), s² = 1/within_cosine − 1, n⊥_i a uniformly random unit
    vector orthogonal to u_i, drawn per slot from `key`.

    Args:
      key: a PRNG key (typed or raw).
      problem: Problem (unused).
      slots: Slots with leading axis N.
      config: the world (static).
    Returns:
      Float32[N, E], unit rows.
    """
    del problem
    u = slots.vector
    if config.within_cosine == 1.0:
        return u
    s = math.sqrt(1.0 / config.within_cosine - 1.0)
    z = rng.normal(rng.uniforms(rng.key_data(key), _STREAM_EMBED, u.shape))
    # |u + s·n| = sqrt(1 + s²) since n ⊥ u, both unit: exact up to rounding
    return (u + jnp.float32(s) * _orthogonal_unit(z, u)) * jnp.float32(1.0 / math.sqrt(1.0 + s * s))
