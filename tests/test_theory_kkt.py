"""The `kkt-relaxation` claim (theory/kkt_claims.py) in fast mode: the relaxed Eq. 7 has a KKT
point (water-filling), optax reaches the same minimum, and it lower-bounds the integer optimum."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import theory.core
from theory import kkt_claims
from theory.kkt_claims import KKT_TOL, OPTAX_TOL, ORDER_TOL


def test_kkt_relaxation_holds_and_lower_bounds_integer_optimum():
    v = theory.core.run_claim("kkt-relaxation", "fast")
    assert v.claim_id == "kkt-relaxation"
    assert v.verdict == "holds"
    assert v.measured["max_kkt_violation_waterfill"] <= KKT_TOL
    assert v.measured["max_optax_minus_waterfill_logfail"] <= OPTAX_TOL
    assert v.measured["max_waterfill_minus_optax_logfail"] <= ORDER_TOL
    # Relaxed log-failure ≤ integer optimum's log-failure (+ float tolerance), in every cell; the
    # integer optimum is strictly worse somewhere (integrality costs something at N = 16).
    for cell in v.details["cells"]:
        assert cell["max_order_violation"] <= ORDER_TOL
        assert cell["success_gap_max"] >= -ORDER_TOL
    assert v.measured["max_success_gap_integer_vs_relaxed"] > 1e-6
    # The lnΓ objective agrees with the core's expected failure at integers.
    assert v.measured["max_gammaln_vs_core_at_integers"] < 1e-9


def test_waterfill_solves_a_hand_checkable_case():
    """Equal scores → equal split by symmetry; one dominant score at κ → large → all on it."""
    import jax

    with jax.enable_x64(True):
        w = jnp.full((4,), 0.25, jnp.float64)
        b = np.asarray(kkt_claims._solve_waterfill(w, 16.0, 1.0))
        np.testing.assert_allclose(b, 4.0, rtol=1e-9)
        w = jnp.asarray([0.97, 0.01, 0.01, 0.01], jnp.float64)
        b = np.asarray(kkt_claims._solve_waterfill(w, 16.0, 1e4))
        assert b[0] > 16.0 - 1e-6
