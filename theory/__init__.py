"""theory: every claim of the paper as an executable check with a declared verdict protocol.

`CLAIM_IDS` lists the claims without importing JAX (for `dora verify --help`); `load_claims()`
imports the claim modules, which fill `theory.core.CLAIMS` (a test pins the two to each other).
"""

import importlib

CLAIM_IDS: tuple[str, ...] = (
    "eq5-success",
    "beta-moment",
    "digamma-step",
    "prop1-kappa-inf",
    "prop1-kappa-0",
    "prop1-linear",
    "rebase-near-optimal",
    "prop1-limits-search",
    "prop2-kl",
    "prop2-success",
    "theorem1-hard",
    "theorem1-integer",
    "theorem1-soft",
    "rounding",
    "table1-flops",
    "kkt-relaxation",
    "b1-lambda",
    "pareto",
    "optimal-multiround",
    "table1-latency",
    "adaptive-pareto",
)
MODULES: tuple[str, ...] = (
    "adaptive_claims",
    "beta_claims",
    "direction_claims",
    "kkt_claims",
    "pareto_claims",
    "search_claims",
)


def load_claims() -> None:
    """Imports every claim module (registering its claims); idempotent."""
    for name in MODULES:
        importlib.import_module(f"theory.{name}")


__all__ = ["CLAIM_IDS", "MODULES", "load_claims"]
