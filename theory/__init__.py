"""theory: every claim of the paper as an executable check (see README.md, architecture).

Importing the package imports every claim module, which fills `theory.core.CLAIMS`.
"""

from theory import beta_claims, direction_claims, kkt_claims, pareto_claims

__all__ = ["beta_claims", "direction_claims", "kkt_claims", "pareto_claims"]
