"""Experiment specifications for `dora simulate`: a world, methods × budgets, P problems, S seeds.

A spec comes from a preset name or a TOML file::

    world = "redundant"            # a preset name, or a table of WorldConfig fields
    # [world]                      # (dora_jax.world_spec):
    # preset = "paper-like"        # optional base
    # alpha = 0.5
    methods = ["beam_search", "rebase", "dora"]
    # or tables: methods = [{method = "dora", similarity_temperature = 0.05}, "rebase"]
    budgets = [16, 64]
    problems = 200
    seeds = 2
    max_rounds = 40
    policy = "llama-3.2-1b"        # model sizes for the FLOPs model
    # [adaptive]                   # optional: adaptive compute (dora_jax.adaptive)
    # threshold = 0.9              # stop a problem when P(vote's leader correct) >= threshold
    # price = 0.001                # or when 1 - P(leader correct) <= price x next round's rollouts
    # kappa = 15.0                 # κ of the stopping posterior
    # cap = 2                      # a running problem may take up to cap x N slots of the pool
    # min_votes = 2                # finished solutions needed before an early stop
    # total = 64                   # a total of P x total rollouts over the search (>= N)
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

from dora_jax import world as world_lib
from dora_jax import world_spec
from dora_jax.adaptive import Adaptive, AdaptiveError
from dora_jax.ledger import ModelSizes
from dora_jax.montecarlo import PAPER_METHODS
from dora_jax.search import MAX_ROUNDS, Rule

PAPER_BUDGETS = (16, 32, 64, 128, 256)


class SpecError(ValueError):
    """A bad experiment specification (reported as one line)."""


@dataclasses.dataclass(frozen=True)
class ExperimentSpec:
    world: world_lib.WorldConfig
    world_name: str
    rules: tuple[Rule, ...] = tuple(Rule.make(m) for m in PAPER_METHODS)
    budgets: tuple[int, ...] = PAPER_BUDGETS
    problems: int = 200
    seeds: int = 1
    max_rounds: int = MAX_ROUNDS
    policy: str = "llama-3.2-1b"
    # Adaptive compute (stopping, the cross-problem pool); None: the fixed-N engine.
    adaptive: Adaptive | None = None

    def __post_init__(self):
        if self.problems < 1:
            raise SpecError(f"problems must be >= 1, got {self.problems}")
        if self.seeds < 1:
            raise SpecError(f"seeds must be >= 1, got {self.seeds}")
        if self.max_rounds < 1:
            raise SpecError(f"max_rounds must be >= 1, got {self.max_rounds}")
        if not self.budgets or any(b < 1 for b in self.budgets):
            raise SpecError(f"budgets must be integers >= 1, got {list(self.budgets)}")
        if not self.rules:
            raise SpecError("no methods given")
        labels = [r.label for r in self.rules]
        if len(set(labels)) != len(labels):
            raise SpecError(f"methods repeat: {labels}")
        for rule in self.rules:
            small = [b for b in self.budgets if b < rule.min_budget]
            if small:
                raise SpecError(
                    f"budget {small[0]} is smaller than the {rule.info.min_budget_reason} "
                    f"{rule.min_budget} of {rule.method}"
                )
        if self.adaptive is not None:
            for budget in self.budgets:
                try:
                    self.adaptive.check_budget(budget)
                except AdaptiveError as error:
                    raise SpecError(str(error)) from None
        try:
            ModelSizes.for_policy(self.policy)
        except ValueError as error:
            raise SpecError(str(error)) from None

    @property
    def model_sizes(self) -> ModelSizes:
        return ModelSizes.for_policy(self.policy)

    def describe(self) -> dict[str, Any]:
        world = {
            k: (v if not (isinstance(v, float) and math.isinf(v)) else "inf")
            for k, v in world_lib.describe(self.world).items()
        }
        return {
            "world": self.world_name,
            "world_config": world,
            "methods": [r.label for r in self.rules],
            "budgets": list(self.budgets),
            "problems": self.problems,
            "seeds": self.seeds,
            "max_rounds": self.max_rounds,
            "policy": self.policy,
            **({"adaptive": self.adaptive.describe()} if self.adaptive is not None else {}),
        }

    def slots_needed(self, budget: int) -> int:
        """The slots per problem a search at budget N needs (C = cap × N when adaptive)."""
        return budget if self.adaptive is None else self.adaptive.slots(budget)


def parse_adaptive(value: Any) -> Adaptive | None:
    """An `[adaptive]` table (or None) as `Adaptive` settings; mistakes as one SpecError line."""
    if value is None:
        return None
    if isinstance(value, Adaptive):
        return value
    if not isinstance(value, dict):
        raise SpecError(f"adaptive must be a table, got {value!r}")
    known = {f.name for f in dataclasses.fields(Adaptive)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise SpecError(f"unknown adaptive key {unknown[0]!r}; keys: {', '.join(sorted(known))}")
    try:
        return Adaptive(**value)
    except AdaptiveError as error:
        raise SpecError(str(error)) from None


def parse_rule(item: Any) -> Rule:
    if isinstance(item, str):
        method, hp = item, {}
    elif isinstance(item, dict) and isinstance(item.get("method"), str):
        hp = {k: v for k, v in item.items() if k != "method"}
        method = item["method"]
    else:
        raise SpecError(f"a method is a name or a table with a 'method' key, got {item!r}")
    try:
        return Rule.make(method, **hp)
    except ValueError as error:
        raise SpecError(str(error)) from None


def world_from(value: Any) -> tuple[world_lib.WorldConfig, str]:
    """`dora_jax.world_spec.world_from`, its mistakes as SpecError lines."""
    try:
        return world_spec.world_from(value)
    except world_spec.WorldSpecError as error:
        raise SpecError(str(error)) from None


_TOP_LEVEL = {
    "world",
    "methods",
    "budgets",
    "problems",
    "seeds",
    "max_rounds",
    "policy",
    "adaptive",
}


def load_spec(path: Path) -> ExperimentSpec:
    """An ExperimentSpec from a TOML file; every mistake is one SpecError line."""
    if not path.is_file():
        raise SpecError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecError(f"{path} is not valid TOML: {error}") from None
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise SpecError(
            f"{path}: unknown key {unknown[0]!r}; keys: {', '.join(sorted(_TOP_LEVEL))}"
        )
    return build_spec(**data)


def build_spec(
    *,
    world: Any = "paper-like",
    methods: Any = PAPER_METHODS,
    budgets: Any = PAPER_BUDGETS,
    problems: Any = 200,
    seeds: Any = 1,
    max_rounds: Any = MAX_ROUNDS,
    policy: Any = "llama-3.2-1b",
    adaptive: Any = None,
) -> ExperimentSpec:
    config, name = world_from(world)
    if not isinstance(methods, list | tuple):
        raise SpecError(f"methods must be a list, got {methods!r}")
    if not isinstance(budgets, list | tuple) or not all(
        isinstance(b, int) and not isinstance(b, bool) for b in budgets
    ):
        raise SpecError(f"budgets must be a list of integers, got {budgets!r}")
    repeated = sorted({b for b in budgets if list(budgets).count(b) > 1})
    if repeated:
        raise SpecError(f"budgets repeat {repeated[0]}; give each once")
    for label, value in (("problems", problems), ("seeds", seeds), ("max_rounds", max_rounds)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise SpecError(f"{label} must be an integer, got {value!r}")
    return ExperimentSpec(
        world=config,
        world_name=name,
        rules=tuple(parse_rule(m) for m in methods),
        budgets=tuple(sorted(set(budgets))),
        problems=problems,
        seeds=seeds,
        max_rounds=max_rounds,
        policy=str(policy),
        adaptive=parse_adaptive(adaptive),
    )
