"""dora-jax: optimal rollout allocation for test-time scaling (DORA, NeurIPS 2025) in JAX.

The pure core: arrays in, arrays out. Allocation rules with an exact budget (`allocate`,
`allocation_weights`, `apportion`), their registry (`RULES`, `rule_info`, `register_rule`) and
the exact Bayes-optimal allocation of Eq. 7 (`optimal_allocation`, `expected_failure`).
Specification: docs/allocation.md.
"""

from dora_jax._checks import MAX_BUDGET
from dora_jax.api import METHODS, allocate, allocation_weights
from dora_jax.apportion import apportion
from dora_jax.optimal import expected_failure, log_expected_failure, optimal_allocation
from dora_jax.registry import RULES, RuleInfo, register_rule, rule_info

__version__ = "0.1.0"

__all__ = [
    "MAX_BUDGET",
    "METHODS",
    "RULES",
    "RuleInfo",
    "allocate",
    "allocation_weights",
    "apportion",
    "expected_failure",
    "log_expected_failure",
    "optimal_allocation",
    "register_rule",
    "rule_info",
]
