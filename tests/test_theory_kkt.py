"""The `kkt-relaxation` claim (theory/kkt_claims.py): the relaxed Eq. 7's KKT point and the lower
bound on the integer optimum, judged; optax's convergence is a diagnostic only."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory import kkt_claims
from theory.core import run_cached


def fast(claim_id: str, control: bool = False):
    return run_cached(claim_id, "fast", control=control)


def test_kkt_point_and_lower_bound_hold():
    v = fast("kkt-relaxation")
    assert v.verdict == "holds" and v.value <= 1e-9
    for cell in v.details["cells"]:
        assert cell["relaxed_minus_integer_logfail"] <= 1e-9
        assert cell["gammaln_vs_core_at_integers"] < 1e-9
    assert max(c["success_gap_integer_vs_relaxed_max"] for c in v.details["cells"]) > 1e-6


def test_wrong_marginal_breaks_kkt():
    assert fast("kkt-relaxation", True).value > 1e-3


def test_waterfill_solves_a_hand_checkable_case():
    """Equal scores → equal split by symmetry; one dominant score at κ → large → all on it."""
    with jax.enable_x64(True):
        w = jnp.full((4,), 0.25, jnp.float64)
        b = np.asarray(kkt_claims._solve_waterfill(w, 16.0, 1.0))
        np.testing.assert_allclose(b, 4.0, rtol=1e-9)
        w = jnp.asarray([0.97, 0.01, 0.01, 0.01], jnp.float64)
        b = np.asarray(kkt_claims._solve_waterfill(w, 16.0, 1e4))
        assert b[0] > 16.0 - 1e-6
