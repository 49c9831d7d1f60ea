"""The allocation rules' registry: one record per rule, holding what the rule is and needs.

Everything that differs between rules lives on its `RuleInfo` (as optax keeps a transform's
state with the transform): the kernel and its continuous weights, the hyperparameters with their
defaults, and what it needs and does — whether it reads embeddings, reads the ground truth,
reallocates the budget each round, keeps subtree groups, its smallest budget. `dora_jax.allocate`,
the search engine (`dora_jax.search`) and the command line read the record; none of them tests a
rule's name. Adding a rule is one `register_rule` call plus its tests (the shared conformance
suite is parametrized from `RULES`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from jaxtyping import Array, Float, Int

from dora_jax import _checks, directions, learned, rules

__all__ = ["RULES", "RuleInfo", "register_rule", "rule_info"]


def _one(hyperparameters: Mapping[str, Any]) -> int:
    del hyperparameters
    return 1


@dataclasses.dataclass(frozen=True)
class RuleInfo:
    """One allocation rule: its kernels, defaults, needs and effects.

    Attributes:
      name: the method name (`dora_jax.allocate(name, ...)`).
      allocate: the kernel `f(key, scores, budget, *, mask, embeddings, **hp) -> Int[K]`.
      weights: the continuous shares `g(scores, *, mask, **hp) -> Float[K]` it apportions, or
        None when it allocates integers directly.
      defaults: every hyperparameter it takes, with its default (the paper's, App. D.1).
      description: one line for help texts, with the paper's equation.
      reads_embeddings: the engine embeds the survivors for it (only these rules pay for the
        embedder).
      reads_truth: it allocates on the world's ground-truth success probabilities instead of the
        PRM scores (simulators only, `World.truth`).
      reallocates: the engine re-slots N rollouts over the survivors each round; when False each
        survivor continues on its own slot (best-of-N sampling).
      group_width: for rules that keep subtree groups (the engine passes `groups=`, the slots'
        subtree ids, and starts slot s in group s // group_width(hp)); None: no groups.
      min_budget: the smallest budget N it accepts, from its full hyperparameters.
      min_budget_reason: what that minimum is, for the error message (e.g. "beam width").
      probability_scores: its scores are the PRM's probabilities R ∈ [0, 1] (the paper's R, §2.1),
        checked when called eagerly.
      weights_takes: keywords the weights function takes besides the hyperparameters (e.g.
        "budget" for a pre-filter that depends on N); "embeddings" is passed when it reads them.
      validate: an extra eager check of the full hyperparameters (and `weights_takes` values)
        raising a one-line ValueError, called by `allocation_weights`; None: none.
      check: an eager check of the full hyperparameters wherever the rule is named with them
        (`dora_jax.allocate`, `dora_jax.search.Rule`, hence every spec of simulate, bench and
        verify), raising a one-line ValueError (e.g. a checkpoint that does not load); None: none.
    """

    name: str
    allocate: Callable[..., Int[Array, " K"]]
    weights: Callable[..., Float[Array, " K"]] | None = None
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""
    reads_embeddings: bool = False
    reads_truth: bool = False
    reallocates: bool = True
    group_width: Callable[[Mapping[str, Any]], int] | None = None
    min_budget: Callable[[Mapping[str, Any]], int] = _one
    min_budget_reason: str = "minimum budget"
    probability_scores: bool = True
    weights_takes: tuple[str, ...] = ()
    validate: Callable[[Mapping[str, Any]], None] | None = None
    check: Callable[[Mapping[str, Any]], None] | None = None

    def resolve(self, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
        """The defaults overridden by `hyperparameters`."""
        return {**self.defaults, **hyperparameters}


_REGISTRY: dict[str, RuleInfo] = {}
# A read-only view: rules join only through `register_rule`.
RULES: Mapping[str, RuleInfo] = MappingProxyType(_REGISTRY)


def register_rule(
    name: str,
    allocate: Callable[..., Int[Array, " K"]],
    **fields: Any,
) -> RuleInfo:
    """Adds a rule to `RULES` (and so to `dora_jax.METHODS`, the engine, the CLI and specs).

    Args:
      name: the method name; must be new.
      allocate: the kernel (see `RuleInfo.allocate`).
      **fields: the other `RuleInfo` fields (weights, defaults, description, reads_embeddings, …).

    Returns:
      The registered record.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a rule name must be an identifier, got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"a rule named {name!r} is already registered")
    unknown = set(fields) - {f.name for f in dataclasses.fields(RuleInfo)}
    if unknown:
        raise ValueError(f"RuleInfo has no field(s) {', '.join(sorted(unknown))}")
    info = RuleInfo(name, allocate, **fields)
    _REGISTRY[name] = info
    return info


def rule_info(name: str) -> RuleInfo:
    """The record of rule `name`; raises a one-line ValueError listing the rules otherwise."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


# --- the paper's rules ------------------------------------------------------------------------


def _beam_width(hp: Mapping[str, Any]) -> int:
    return int(hp["beam_width"])


def _check_prefilter_budget(hp: Mapping[str, Any]) -> None:
    if hp.get("prefilter", "none") != "none" and hp.get("budget") is None:
        raise ValueError(f"dora's prefilter={hp['prefilter']!r} depends on N: pass budget=N")
    if hp.get("budget") is not None:
        _checks.check_budget(hp["budget"])


register_rule(
    "temperature_sampling",
    rules.temperature_sampling,
    weights=rules.uniform_weights,
    reallocates=False,
    description="N independent samples, best-of-N (Eq. 1): no reallocation",
)
register_rule(
    "beam_search",
    rules.beam_search,
    defaults={"beam_width": rules.BEAM_WIDTH},
    min_budget=_beam_width,
    min_budget_reason="beam width",
    description="the top ⌊N/M⌋ candidates by score get M rollouts each (Eq. 2)",
)
register_rule(
    "dvts",
    rules.dvts,
    defaults={"beam_width": rules.BEAM_WIDTH, "groups": None},
    group_width=_beam_width,
    min_budget=_beam_width,
    min_budget_reason="beam width",
    description="the best candidate of each of N/M subtrees gets M rollouts (Eq. 3)",
)
register_rule(
    "rebase",
    rules.rebase,
    weights=rules.rebase_weights,
    defaults={"temperature": rules.REBASE_TEMPERATURE, "rounding": "hamilton"},
    description="B_i ∝ softmax(R/T_b)_i, apportioned exactly (Eq. 4)",
)
register_rule(
    "dora",
    rules.dora,
    weights=rules.dora_weights,
    defaults={
        "temperature": rules.REBASE_TEMPERATURE,
        "similarity_temperature": rules.SIMILARITY_TEMPERATURE,
        "rounding": "hamilton",
        "prefilter": "none",
    },
    reads_embeddings=True,
    weights_takes=("budget",),
    validate=_check_prefilter_budget,
    description="B_i ∝ softmax(R/T_b)_i·γ_i, γ the semantic uniqueness (Eqs. 10–13)",
)
register_rule(
    "optimal",
    rules.optimal,
    defaults={"kappa": 1.0, "temperature": None, "directions": None},
    description="the Bayes-optimal allocation under p_i ~ Beta(κw_i, κ(1 − w_i)) (Eq. 7)",
)
register_rule(
    "oracle",
    rules.oracle,
    reads_truth=True,
    description="all N on the candidate with the highest TRUE p (Eq. 7 as κ → ∞; simulators)",
)
register_rule(
    "bayes",
    directions.bayes_allocation,
    defaults={
        "kappa": 1.0,
        "num_samples": directions.NUM_SAMPLES,
        "concentration": directions.CONCENTRATION,
        "merge_cosine": directions.MERGE_COSINE,
        "score_scale": directions.SCORE_SCALE,
        "iterations": directions.ITERATIONS,
    },
    reads_embeddings=True,
    description="Eq. 7 with direction-shared p over a posterior of directions (embeddings)",
)
register_rule(
    "learned",
    learned.learned,
    defaults={"checkpoint": learned.SHIPPED, "kappa": None},
    reads_embeddings=True,
    check=learned.check_checkpoint,
    description="a network trained in the simulator to minimize Eq. 7's expected failure "
    "(amortized bayes; `dora train`)",
)
