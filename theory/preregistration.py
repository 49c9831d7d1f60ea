"""The pre-registration record: for every claim, what is measured, where, and how it is judged.

Each entry fixes, before results are (re)run: the quantity in words; the region of every mode
("fast" for the test suite, "default" for `dora verify`, "thorough"); the tolerance, the looser
"approximately" tolerance and the sense of the comparison; for Monte Carlo quantities the
family-wise error rate, the number of interim looks, the number of estimates per mode and the k of
the k·SE rule that follows (two-sided Bonferroni over estimates × looks, `theory.core.k_for`); the
control; the commit and date of the declaration; and its history (how, and whether before or
after seeing results, it was chosen).

`theory.core.run_claim` refuses to measure a claim whose declaration in code differs from its
entry here (and a Monte Carlo claim whose estimates are not the number declared), and
tests/test_theory_preregistration.py checks every claim in every mode, so a declaration cannot
drift: changing one means changing its entry, in a commit of its own, before rerunning.

Regions are recorded in their JSON form (tuples as lists, non-finite numbers as strings).
"""

from __future__ import annotations

import math
from typing import Any

RECORD: dict[str, dict[str, Any]] = {
    "eq5-success": {
        "quantity": "|simulated P(≥ 1 success) − (1 − dora_jax.expected_failure(w, B, "
        "κ))| per case (p_i drawn from Beta, then B_i Bernoulli rollouts "
        "each)",
        "tolerance": 0.01,
        "approximately": None,
        "sense": "magnitude",
        "fwer": 0.001,
        "looks": 1,
        "unit": "in probability",
        "control": "a world where Assumption 1 fails: candidates of one direction "
        "share one p (correlated), judged against the same "
        "independent-candidate Eq. 5",
        "region": {
            "fast": {
                "cases": [
                    {"w": [0.1, 0.3, 0.05], "B": [2, 1, 4], "kappa": 1.0},
                    {
                        "w": [0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02],
                        "B": [4, 4, 4, 4, 4, 4, 4, 4],
                        "kappa": 10.0,
                    },
                    {"w": [0.5, 0.2], "B": [1, 3], "kappa": 0.5},
                    {"w": [0.9, 0.01, 0.01, 0.01], "B": [1, 10, 10, 10], "kappa": 2.0},
                    {"w": [0.3, 0.3, 0.3, 0.3], "B": [2, 2, 2, 2], "kappa": 0.3},
                ],
                "draws_per_case": 200000,
                "seed": 5,
            },
            "default": {
                "cases": [
                    {"w": [0.1, 0.3, 0.05], "B": [2, 1, 4], "kappa": 1.0},
                    {
                        "w": [0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02],
                        "B": [4, 4, 4, 4, 4, 4, 4, 4],
                        "kappa": 10.0,
                    },
                    {"w": [0.5, 0.2], "B": [1, 3], "kappa": 0.5},
                    {"w": [0.9, 0.01, 0.01, 0.01], "B": [1, 10, 10, 10], "kappa": 2.0},
                    {"w": [0.3, 0.3, 0.3, 0.3], "B": [2, 2, 2, 2], "kappa": 0.3},
                ],
                "draws_per_case": 400000,
                "seed": 5,
            },
            "thorough": {
                "cases": [
                    {"w": [0.1, 0.3, 0.05], "B": [2, 1, 4], "kappa": 1.0},
                    {
                        "w": [0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02],
                        "B": [4, 4, 4, 4, 4, 4, 4, 4],
                        "kappa": 10.0,
                    },
                    {"w": [0.5, 0.2], "B": [1, 3], "kappa": 0.5},
                    {"w": [0.9, 0.01, 0.01, 0.01], "B": [1, 10, 10, 10], "kappa": 2.0},
                    {"w": [0.3, 0.3, 0.3, 0.3], "B": [2, 2, 2, 2], "kappa": 0.3},
                ],
                "draws_per_case": 4000000,
                "seed": 5,
            },
        },
        "estimates": {"fast": 5, "default": 5, "thorough": 5},
        "k": {"fast": 3.719, "default": 3.719, "thorough": 3.719},
        "declared": "9eb3173 2026-12-06 03:42 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here unchanged",
    },
    "beta-moment": {
        "quantity": "relative error of the product form against tanh-sinh quadrature "
        "of the Beta integral and against dora_jax.expected_failure, max "
        "of the two per grid point",
        "tolerance": 1e-09,
        "approximately": None,
        "sense": "at-most",
        "fwer": None,
        "looks": 1,
        "unit": "relative",
        "control": "the product taken over r ≤ B (one factor too many)",
        "region": {
            "fast": {"kappa": [0.5, 10.0], "w": [0.1, 0.7], "B": [1, 5, 32]},
            "default": {
                "kappa": [0.1, 0.5, 2.0, 10.0, 100.0],
                "w": [0.1, 0.5, 0.7, 0.9],
                "B": [1, 3, 10, 64],
            },
            "thorough": {
                "kappa": [0.05, 0.1, 0.5, 2, 10, 100, 1000.0],
                "w": [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98],
                "B": [1, 2, 3, 10, 64, 256],
            },
        },
        "declared": "ceb3a74 2026-12-06 03:34 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here unchanged",
    },
    "digamma-step": {
        "quantity": "relative error (exact − L)/exact of the digamma form per grid point",
        "tolerance": 1e-06,
        "approximately": None,
        "sense": "at-most",
        "fwer": None,
        "looks": 1,
        "unit": "relative",
        "control": "the step written as the identity it would need: Σ_r −log(1 − "
        "κw/(κ+r)) in place of Σ_r κw/(κ+r) = κw[ψ(κ+B) − ψ(κ)]",
        "region": {
            "fast": {"kappa": ["logspace", -3, 3, 7], "w": [0.01, 0.3, 0.9], "B": [1, 4, 32, 256]},
            "default": {
                "kappa": ["logspace", -3, 3, 25],
                "w": [0.001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99],
                "B": [1, 2, 4, 8, 16, 32, 64, 128, 256],
            },
            "thorough": {
                "kappa": ["logspace", -3, 3, 61],
                "w": [0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99],
                "B": [
                    1,
                    2,
                    3,
                    4,
                    5,
                    6,
                    7,
                    8,
                    9,
                    10,
                    11,
                    12,
                    13,
                    14,
                    15,
                    16,
                    17,
                    18,
                    19,
                    20,
                    21,
                    22,
                    23,
                    24,
                    25,
                    26,
                    27,
                    28,
                    29,
                    30,
                    31,
                    32,
                    33,
                    34,
                    35,
                    36,
                    37,
                    38,
                    39,
                    40,
                    41,
                    42,
                    43,
                    44,
                    45,
                    46,
                    47,
                    48,
                    49,
                    50,
                    51,
                    52,
                    53,
                    54,
                    55,
                    56,
                    57,
                    58,
                    59,
                    60,
                    61,
                    62,
                    63,
                    64,
                    65,
                    66,
                    67,
                    68,
                    69,
                    70,
                    71,
                    72,
                    73,
                    74,
                    75,
                    76,
                    77,
                    78,
                    79,
                    80,
                    81,
                    82,
                    83,
                    84,
                    85,
                    86,
                    87,
                    88,
                    89,
                    90,
                    91,
                    92,
                    93,
                    94,
                    95,
                    96,
                    97,
                    98,
                    99,
                    100,
                    101,
                    102,
                    103,
                    104,
                    105,
                    106,
                    107,
                    108,
                    109,
                    110,
                    111,
                    112,
                    113,
                    114,
                    115,
                    116,
                    117,
                    118,
                    119,
                    120,
                    121,
                    122,
                    123,
                    124,
                    125,
                    126,
                    127,
                    128,
                    129,
                    130,
                    131,
                    132,
                    133,
                    134,
                    135,
                    136,
                    137,
                    138,
                    139,
                    140,
                    141,
                    142,
                    143,
                    144,
                    145,
                    146,
                    147,
                    148,
                    149,
                    150,
                    151,
                    152,
                    153,
                    154,
                    155,
                    156,
                    157,
                    158,
                    159,
                    160,
                    161,
                    162,
                    163,
                    164,
                    165,
                    166,
                    167,
                    168,
                    169,
                    170,
                    171,
                    172,
                    173,
                    174,
                    175,
                    176,
                    177,
                    178,
                    179,
                    180,
                    181,
                    182,
                    183,
                    184,
                    185,
                    186,
                    187,
                    188,
                    189,
                    190,
                    191,
                    192,
                    193,
                    194,
                    195,
                    196,
                    197,
                    198,
                    199,
                    200,
                    201,
                    202,
                    203,
                    204,
                    205,
                    206,
                    207,
                    208,
                    209,
                    210,
                    211,
                    212,
                    213,
                    214,
                    215,
                    216,
                    217,
                    218,
                    219,
                    220,
                    221,
                    222,
                    223,
                    224,
                    225,
                    226,
                    227,
                    228,
                    229,
                    230,
                    231,
                    232,
                    233,
                    234,
                    235,
                    236,
                    237,
                    238,
                    239,
                    240,
                    241,
                    242,
                    243,
                    244,
                    245,
                    246,
                    247,
                    248,
                    249,
                    250,
                    251,
                    252,
                    253,
                    254,
                    255,
                    256,
                ],
            },
        },
        "declared": "9eb3173 2026-12-06 03:42 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here unchanged",
    },
    "prop1-kappa-inf": {
        "quantity": "per draw: 1 if the exact optimum does not put all N on "
        "argmax w at κ = 1.001·κ*, κ* = w₂(N − 1)/(w₁ − w₂) the "
        "finite κ where the limit is reached, else 0",
        "tolerance": 0.0,
        "approximately": None,
        "sense": "at-most",
        "fwer": None,
        "looks": 1,
        "unit": "",
        "control": "REBASE's allocation (independent of κ) in place of the exact optimum",
        "region": {
            "fast": {
                "draws": 16,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 21,
                "N": 32,
            },
            "default": {
                "draws": 64,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 21,
                "N": 32,
            },
            "thorough": {
                "draws": 512,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 21,
                "N": 32,
            },
        },
        "declared": "ceb3a74 2026-12-06 03:34 UTC",
        "history": "declared with its check (protocol and first result in the "
        "same commit: not separately pre-registered); recorded here "
        "unchanged",
    },
    "prop1-kappa-0": {
        "quantity": "per (N, κ, draw): how many of the top min(k, N) candidates get "
        "no rollout from the exact optimum",
        "tolerance": 0.0,
        "approximately": None,
        "sense": "at-most",
        "fwer": None,
        "looks": 1,
        "unit": "candidates",
        "control": "round(N·w) by largest remainders (the 'B_i ∝ w_i' reading of App. B.2)",
        "region": {
            "fast": {
                "draws": 16,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 31,
                "N": [4, 32],
                "kappa": [1e-06, 1e-08],
            },
            "default": {
                "draws": 64,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 31,
                "N": [4, 8, 32, 64],
                "kappa": [1e-06, 1e-07, 1e-08],
            },
            "thorough": {
                "draws": 512,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 31,
                "N": [2, 4, 8, 16, 32, 64, 256],
                "kappa": [1e-06, 1e-07, 1e-08, 1e-10],
            },
        },
        "declared": "ceb3a74 2026-12-06 03:34 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here "
        "unchanged",
    },
    "prop1-linear": {
        "quantity": "per (κ, N): mean over draws of the relative excess failure "
        "P_fail(rule)/P_fail(opt) − 1 of the rule clipped at 0 and "
        "apportioned to N",
        "tolerance": 0.01,
        "approximately": 0.1,
        "sense": "at-most",
        "fwer": 0.001,
        "looks": 1,
        "unit": "relative",
        "control": "the exact optimum in place of the rule (a rule known to be right)",
        "region": {
            "fast": {
                "draws": 64,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 41,
                "kappa": [0.01, 1.0, 10.0],
                "N": [32],
            },
            "default": {
                "draws": 128,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 41,
                "kappa": [0.001, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0],
                "N": [16, 32, 64, 256],
            },
            "thorough": {
                "draws": 512,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 41,
                "kappa": [0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0],
                "N": [8, 16, 32, 64, 128, 256, 1024],
            },
        },
        "estimates": {"fast": 3, "default": 32, "thorough": 77},
        "k": {"fast": 3.5879, "default": 4.1642, "thorough": 4.3603},
        "declared": "ceb3a74 2026-12-06 03:34 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here unchanged",
    },
    "rebase-near-optimal": {
        "quantity": "per κ ≤ 1: mean over draws of the relative excess "
        "failure P_fail(REBASE)/P_fail(opt) − 1 (k = 8, N = 32)",
        "tolerance": 0.01,
        "approximately": 0.1,
        "sense": "at-most",
        "fwer": 0.001,
        "looks": 1,
        "unit": "relative",
        "control": "anti-REBASE, softmax(−R/T_b) (the budget on the worst candidates)",
        "region": {
            "fast": {
                "draws": 64,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 51,
                "N": 32,
                "kappa": [0.001, 0.1, 1.0],
                "kappa beyond the region (reported, not judged)": [2.0, 5.0, 10.0, 20.0],
            },
            "default": {
                "draws": 512,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 51,
                "N": 32,
                "kappa": [0.001, 0.01, 0.1, 0.3, 1.0],
                "kappa beyond the region (reported, not judged)": [2.0, 5.0, 10.0, 20.0],
            },
            "thorough": {
                "draws": 4096,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95)",
                "seed": 51,
                "N": 32,
                "kappa": [0.001, 0.01, 0.03, 0.1, 0.3, 0.5, 1.0],
                "kappa beyond the region (reported, not judged)": [2.0, 5.0, 10.0, 20.0],
            },
        },
        "estimates": {"fast": 3, "default": 5, "thorough": 7},
        "k": {"fast": 3.5879, "default": 3.719, "thorough": 3.8032},
        "declared": "ceb3a74 2026-12-06 03:34 UTC",
        "history": "declared with its check (protocol and first result in the "
        "same commit: not separately pre-registered); recorded "
        "here unchanged",
    },
    "prop1-limits-search": {
        "quantity": (
            "per (limit, N): max over draws of the relative excess failure "
            "P_fail(method)/P_fail(optimal) − 1 of dora_jax's integer allocations "
            "(temperature_sampling at κ = 1e-8, beam_search(beam_width=N) at κ = "
            "1e8) against the exact optimum"
        ),
        "tolerance": 1e-06,
        "approximately": 0.01,
        "sense": "at-most",
        "fwer": None,
        "looks": 1,
        "unit": "relative",
        "control": (
            "the limits swapped (beam_search(beam_width=N) at κ → 0, "
            "temperature_sampling at κ → ∞) where the claim does not fail; where it"
            " fails, the exact optimum's own allocation (excess 0 by construction)"
        ),
        "region": {
            "fast": {
                "draws": 16,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0, 1)",
                "seed": 61,
                "N": [16, 256],
                "kappa → 0": 1e-08,
                "kappa → ∞": 100000000.0,
                "approach (reported, not judged)": {
                    "kappa → 0": [0.01, 0.0001, 1e-06],
                    "kappa → ∞": [100.0, 10000.0, 1000000.0],
                },
            },
            "default": {
                "draws": 64,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0, 1)",
                "seed": 61,
                "N": [16, 32, 64, 128, 256],
                "kappa → 0": 1e-08,
                "kappa → ∞": 100000000.0,
                "approach (reported, not judged)": {
                    "kappa → 0": [0.01, 0.0001, 1e-06],
                    "kappa → ∞": [100.0, 10000.0, 1000000.0],
                },
            },
            "thorough": {
                "draws": 512,
                "K": 8,
                "w": "softmax(R/0.1), R ~ U(0, 1)",
                "seed": 61,
                "N": [16, 32, 64, 128, 256],
                "kappa → 0": 1e-08,
                "kappa → ∞": 100000000.0,
                "approach (reported, not judged)": {
                    "kappa → 0": [0.01, 0.0001, 1e-06],
                    "kappa → ∞": [100.0, 10000.0, 1000000.0],
                },
            },
        },
        "declared": "a79a34b 2026-12-06 07:53 UTC",
        "history": (
            "declared with its check in 110f594 and NOT pre-registered then: its "
            "region was moved after a failure (N < K and κ = 1e±4 taken out of the "
            "judged region) and its tolerance (1e-3, approximately 1e-2) set with "
            "the results in view. Re-declared here from the paper's statement "
            "alone, before rerunning: a pair of limits judged at the κ nearest each"
            " limit (1e∓8) with the finite-κ residual the theory predicts there "
            "(tolerance 1e-6; 'closely aligned' granted within 1e-2); N = the "
            "paper's budgets; k = 8 ≤ N (Algorithm 1: at most N active candidates, "
            "Eq. 1 one rollout each); R ~ U(0, 1); the approach (1e∓2, 1e∓4, 1e∓6) "
            "reported; control declared for both outcomes (the limits swapped where"
            " the claim does not fail, the exact optimum where it does). Reasoning "
            "in theory/beta_claims.py above the claim."
        ),
    },
    "prop2-kl": {
        "quantity": "per random case: |(L(dir) − L(sol)) − KL(Q‖Q̂)|, with the "
        "solution-level shares from dora_jax's REBASE on the candidates",
        "tolerance": 1e-12,
        "approximately": None,
        "sense": "magnitude",
        "fwer": None,
        "looks": 1,
        "unit": "",
        "control": "the reversed divergence KL(Q̂‖Q) in place of KL(Q‖Q̂)",
        "region": {
            "fast": {
                "cases": 60,
                "directions g": [2, 6],
                "sizes k_j": [1, 8],
                "scores": "R_j ~ N(0, 1), softmax without temperature (as in the proof)",
                "seed": 20250,
            },
            "default": {
                "cases": 400,
                "directions g": [2, 6],
                "sizes k_j": [1, 8],
                "scores": "R_j ~ N(0, 1), softmax without temperature (as in the proof)",
                "seed": 20250,
            },
            "thorough": {
                "cases": 4000,
                "directions g": [2, 6],
                "sizes k_j": [1, 8],
                "scores": "R_j ~ N(0, 1), softmax without temperature (as in the proof)",
                "seed": 20250,
            },
        },
        "declared": "ceb3a74 2026-12-06 03:34 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here unchanged",
    },
    "prop2-success": {
        "quantity": "per κ: mean over random cases of P(success | solution-level) − "
        "P(success | direction-level) (> 0: direction-level is worse)",
        "tolerance": 0.0,
        "approximately": 0.01,
        "sense": "at-most",
        "fwer": 0.001,
        "looks": 1,
        "unit": "in probability",
        "control": "direction shares softmax(−R/T_b) (the budget on the worst directions)",
        "region": {
            "fast": {
                "cases": 40,
                "kappa": [1.0, 10.0],
                "N": 16,
                "directions": "g ~ U{2..4}, k_j ~ U{1..8}, w_j ~ U(0.05, 0.95), T_b = 0.1",
                "seed": 20251,
            },
            "default": {
                "cases": 200,
                "kappa": [0.3, 1.0, 10.0],
                "N": 16,
                "directions": "g ~ U{2..4}, k_j ~ U{1..8}, w_j ~ U(0.05, 0.95), T_b = 0.1",
                "seed": 20251,
            },
            "thorough": {
                "cases": 1000,
                "kappa": [0.1, 0.3, 1.0, 3.0, 10.0, 100.0],
                "N": 16,
                "directions": "g ~ U{2..4}, k_j ~ U{1..8}, w_j ~ U(0.05, 0.95), T_b = 0.1",
                "seed": 20251,
            },
        },
        "estimates": {"fast": 2, "default": 3, "thorough": 6},
        "k": {"fast": 3.4808, "default": 3.5879, "thorough": 3.7648},
        "declared": "ceb3a74 2026-12-06 03:34 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here "
        "unchanged",
    },
    "theorem1-hard": {
        "quantity": "per case: L1 distance between DORA's direction shares and Eq. 9's",
        "tolerance": 1e-12,
        "approximately": None,
        "sense": "at-most",
        "fwer": None,
        "looks": 1,
        "unit": "",
        "control": "REBASE's candidate shares in place of DORA's",
        "region": {
            "fast": {
                "cases": 20,
                "directions g": [2, 5],
                "sizes k_j": [1, 8],
                "scores": "R_j ~ U(0, 1), T_b = 0.1, T_s = 0.01",
                "embeddings": "one-hot per direction (within cosine 1, cross cosine 0)",
                "seed": 20252,
            },
            "default": {
                "cases": 150,
                "directions g": [2, 5],
                "sizes k_j": [1, 8],
                "scores": "R_j ~ U(0, 1), T_b = 0.1, T_s = 0.01",
                "embeddings": "one-hot per direction (within cosine 1, cross cosine 0)",
                "seed": 20252,
            },
            "thorough": {
                "cases": 1500,
                "directions g": [2, 5],
                "sizes k_j": [1, 8],
                "scores": "R_j ~ U(0, 1), T_b = 0.1, T_s = 0.01",
                "embeddings": "one-hot per direction (within cosine 1, cross cosine 0)",
                "seed": 20252,
            },
        },
        "declared": "ceb3a74 2026-12-06 03:34 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here "
        "unchanged",
    },
    "theorem1-integer": {
        "quantity": "per (case, N): max over directions of |rollouts DORA gives "
        "the direction − N·Q_j| (integer allocation, no pre-filter; "
        "the reference code's pre-filter is reported)",
        "tolerance": 1.0,
        "approximately": None,
        "sense": "at-most",
        "fwer": None,
        "looks": 1,
        "unit": "rollouts",
        "control": "apportioning N·Q over the directions (Eq. 9 rounded at the direction level)",
        "region": {
            "fast": {
                "cases": 20,
                "N": [8, 16, 32, 64],
                "directions g": [2, 5],
                "sizes k_j": [1, 8],
                "scores": "R_j ~ U(0, 1), T_b = 0.1, T_s = 0.01, one-hot embeddings",
                "seed": 20254,
            },
            "default": {
                "cases": 40,
                "N": [8, 16, 32, 64],
                "directions g": [2, 5],
                "sizes k_j": [1, 8],
                "scores": "R_j ~ U(0, 1), T_b = 0.1, T_s = 0.01, one-hot embeddings",
                "seed": 20254,
            },
            "thorough": {
                "cases": 1000,
                "N": [8, 16, 32, 64],
                "directions g": [2, 5],
                "sizes k_j": [1, 8],
                "scores": "R_j ~ U(0, 1), T_b = 0.1, T_s = 0.01, one-hot embeddings",
                "seed": 20254,
            },
        },
        "declared": "9eb3173 2026-12-06 03:42 UTC",
        "history": "declared with its check (protocol and first result in the "
        "same commit: not separately pre-registered); recorded here "
        "unchanged",
    },
    "theorem1-soft": {
        "quantity": "per (within cosine c_w, cross cosine c_x): L1 distance between "
        "DORA's direction shares and Eq. 9's, at R = [0.9, 0.9, 0.7], k "
        "= [5, 1, 2]",
        "tolerance": 0.01,
        "approximately": 0.1,
        "sense": "at-most",
        "fwer": None,
        "looks": 1,
        "unit": "",
        "control": "hard clusters (within cosine 1, Theorem 1's own assumption) everywhere",
        "region": {
            "fast": {
                "T_s": 0.01,
                "within cosine c_w": [0.99, 0.999, 1.0],
                "cross cosine c_x": [0.5],
                "setting": "R = [0.9, 0.9, 0.7], k = [5, 1, 2], T_b = 0.1",
            },
            "default": {
                "T_s": 0.01,
                "within cosine c_w": [0.97, 0.99, 0.995, 0.999, 1.0],
                "cross cosine c_x": [0.0, 0.5, 0.8],
                "setting": "R = [0.9, 0.9, 0.7], k = [5, 1, 2], T_b = 0.1",
            },
            "thorough": {
                "T_s": 0.01,
                "within cosine c_w": [0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9999, 1.0],
                "cross cosine c_x": [0.0, 0.3, 0.5, 0.7, 0.8],
                "setting": "R = [0.9, 0.9, 0.7], k = [5, 1, 2], T_b = 0.1",
            },
        },
        "declared": "ceb3a74 2026-12-06 03:34 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here "
        "unchanged",
    },
    "rounding": {
        "quantity": "per trial: |Σ_i round(N·w_i) − N| (rollouts lost or invented)",
        "tolerance": 0.0,
        "approximately": None,
        "sense": "at-most",
        "fwer": None,
        "looks": 1,
        "unit": "rollouts",
        "control": "largest-remainder apportionment in place of rounding",
        "region": {
            "fast": {
                "trials": 512,
                "N": [2, 256],
                "K": "[2, N] (a search never has more candidates than rollouts)",
                "weights": "softmax(R/0.1), R ~ U(0, 1)",
                "rounding": "round half to even (as numpy and the reference code)",
                "seed": 20253,
            },
            "default": {
                "trials": 4096,
                "N": [2, 256],
                "K": "[2, N] (a search never has more candidates than rollouts)",
                "weights": "softmax(R/0.1), R ~ U(0, 1)",
                "rounding": "round half to even (as numpy and the reference code)",
                "seed": 20253,
            },
            "thorough": {
                "trials": 32768,
                "N": [2, 256],
                "K": "[2, N] (a search never has more candidates than rollouts)",
                "weights": "softmax(R/0.1), R ~ U(0, 1)",
                "rounding": "round half to even (as numpy and the reference code)",
                "seed": 20253,
            },
        },
        "declared": "ceb3a74 2026-12-06 03:34 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here unchanged",
    },
    "table1-flops": {
        "quantity": (
            "FLOPs(REBASE@N) / FLOPs(DORA@N/4) from tokens counted in"
            " a simulated search (policy + cached PRM + embedder, "
            "2·parameters·tokens), relative to Table 1's 3.49: the "
            "ratio of mean FLOPs per problem over every problem of "
            "every seed (paired: same problems and keys), SE by the "
            "delta method over problems"
        ),
        "tolerance": 0.1,
        "approximately": 0.25,
        "sense": "magnitude",
        "fwer": 0.001,
        "looks": 1,
        "unit": "relative",
        "control": "DORA at the full budget N (no 4× fewer rollouts)",
        "region": {
            "fast": {
                "world": "paper-like preset",
                "N": 16,
                "problems": 32,
                "seeds": 3,
                "max_rounds": 12,
                "models": (
                    "Llama-3.2-1B policy, Qwen2.5-Math-PRM-7B, BGE-M3 (dora_jax.ledger.ModelSizes)"
                ),
            },
            "default": {
                "world": "paper-like preset",
                "N": 16,
                "problems": 64,
                "seeds": 20,
                "max_rounds": 12,
                "models": (
                    "Llama-3.2-1B policy, Qwen2.5-Math-PRM-7B, BGE-M3 (dora_jax.ledger.ModelSizes)"
                ),
            },
            "thorough": {
                "world": "paper-like preset",
                "N": 32,
                "problems": 256,
                "seeds": 8,
                "max_rounds": 12,
                "models": (
                    "Llama-3.2-1B policy, Qwen2.5-Math-PRM-7B, BGE-M3 (dora_jax.ledger.ModelSizes)"
                ),
            },
        },
        "estimates": {"fast": 1, "default": 1, "thorough": 1},
        "k": {"fast": 3.2905, "default": 3.2905, "thorough": 3.2905},
        "declared": ("2ce7d73 2026-12-06 07:58 UTC"),
        "history": (
            "first declared with its check (9eb3173, protocol and "
            "first result together). Changed here, before rerunning: "
            "its SE came from 4 per-seed ratios judged with a normal "
            "k, which 4 samples cannot support (Student's t at 3 d.f."
            " is about 4 times wider at this error rate); now the "
            "ratio of mean FLOPs over every problem of every seed, SE"
            " by the delta method over the paired problems, and 20 "
            "seeds of 64 problems by default, sized so that k·SE ≤ "
            "half the tight tolerance from a pilot of 4 seeds × 64 "
            "problems (per-problem SD 0.52 in relative units; the "
            "pilot's estimate, −0.034, was seen). Tolerances and "
            "control unchanged."
        ),
    },
    "kkt-relaxation": {
        "quantity": "per (K, N, κ) cell: the worst of (a) the relative KKT "
        "violation at the water-filling point and (b) log "
        "P_fail(relaxed) − log P_fail(integer optimum), over its "
        "problems",
        "tolerance": 1e-09,
        "approximately": None,
        "sense": "at-most",
        "fwer": None,
        "looks": 1,
        "unit": "",
        "control": "water-filling on the wrong marginal ψ(κ+B) − ψ(κw+B) (w and 1 − w swapped)",
        "region": {
            "fast": {
                "kappa": [0.1, 1.0, 10.0],
                "K": [8],
                "N": [16],
                "problems_per_cell": 8,
                "optax diagnostic": False,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95), seed 100+K",
            },
            "default": {
                "kappa": [0.1, 1.0, 10.0],
                "K": [4, 8],
                "N": [16, 64],
                "problems_per_cell": 16,
                "optax diagnostic": False,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95), seed 100+K",
            },
            "thorough": {
                "kappa": [0.1, 1.0, 10.0],
                "K": [4, 8, 16],
                "N": [16, 64, 256],
                "problems_per_cell": 128,
                "optax diagnostic": True,
                "w": "softmax(R/0.1), R ~ U(0.2, 0.95), seed 100+K",
            },
        },
        "declared": "9eb3173 2026-12-06 03:42 UTC",
        "history": "declared with its check (protocol and first result in the same "
        "commit: not separately pre-registered); recorded here "
        "unchanged",
    },
    "b1-lambda": {
        "quantity": (
            "per (κ, N): mean over draws of w of |λ_approx/λ − 1|, λ the exact "
            "multiplier of step 4's relaxed problem (water-filling on κwψ′(κ+B), B "
            "≥ 0), λ_approx = κ/(N + kκ)"
        ),
        "tolerance": 0.01,
        "approximately": 0.1,
        "sense": "at-most",
        "fwer": 0.001,
        "looks": 1,
        "unit": "relative",
        "control": (
            "a wrong multiplier λ ≈ 1/(N + kκ) (κ dropped from the numerator) where"
            " the claim does not fail; where it fails, the exact multiplier λ "
            "itself (error 0 by construction)"
        ),
        "region": {
            "fast": {
                "kappa": [1.0, 50.0],
                "N": [16, 256],
                "K": 8,
                "draws": 16,
                "w": "softmax(R/0.1), R ~ U(0, 1), seed 11",
            },
            "default": {
                "kappa": [1.0, 3.0, 10.0, 50.0],
                "N": [16, 32, 64, 128, 256],
                "K": 8,
                "draws": 64,
                "w": "softmax(R/0.1), R ~ U(0, 1), seed 11",
            },
            "thorough": {
                "kappa": [1.0, 3.0, 10.0, 50.0],
                "N": [16, 32, 64, 128, 256],
                "K": 8,
                "draws": 512,
                "w": "softmax(R/0.1), R ~ U(0, 1), seed 11",
            },
        },
        "estimates": {"fast": 4, "default": 20, "thorough": 20},
        "k": {"fast": 3.6623, "default": 4.0556, "thorough": 4.0556},
        "declared": "a79a34b 2026-12-06 07:53 UTC",
        "history": (
            "declared with its check in b5d7167 and NOT pre-registered then: its "
            "judged region (κ ≤ 1, N ∈ {64, 256}; κ = 10 and N < 64 reported) was "
            "chosen knowing a prototype's results. Re-declared here from the "
            "paper's statement alone, before rerunning: κ ∈ {1, 3, 10, 50} (the "
            "only finite κ the paper names, Fig. 5), N = the paper's budgets "
            "(§4.1), k = 8, R ~ U(0, 1); no cells carved out; tolerance 1%/10% (the"
            " module's convention for '≈', declared before this claim); control "
            "declared for both outcomes (the wrong multiplier 1/(N + kκ) where the "
            "claim does not fail, the exact λ where it does). Reasoning in "
            "theory/kkt_claims.py above the claim."
        ),
    },
    "pareto": {
        "quantity": (
            "per (world, baseline): paired accuracy difference "
            "acc(DORA@N/4) − acc(baseline@N) over the problems "
            "sampled (batches until decided or the schedule ends)"
        ),
        "tolerance": -0.02,
        "approximately": None,
        "sense": "at-least",
        "fwer": 0.05,
        "looks": 8,
        "unit": "accuracy",
        "control": ("each baseline at N in place of DORA@N/4 (a tie by construction: d ≡ 0)"),
        "region": {
            "fast": {
                "worlds": {"paper-like (alpha=3, kappa=15, within_cosine=0.998)": {}},
                "N": 16,
                "DORA budgets": "N/4 (judged), N (reported, first batch)",
                "baselines": ["temperature_sampling", "beam_search", "dvts", "rebase"],
                "batch_problems": 32,
                "schedule (cumulative batches at each look)": [1, 2, 4],
                "max_rounds": 12,
            },
            "default": {
                "worlds": {
                    "paper-like (alpha=3, kappa=15, within_cosine=0.998)": {},
                    "redundant (alpha=1)": {"alpha": "1.0"},
                },
                "N": 16,
                "DORA budgets": "N/4 (judged), N (reported, first batch)",
                "baselines": ["temperature_sampling", "beam_search", "dvts", "rebase"],
                "batch_problems": 64,
                "schedule (cumulative batches at each look)": [1, 2, 4],
                "max_rounds": 12,
            },
            "thorough": {
                "worlds": {
                    "paper-like (alpha=3, kappa=15, within_cosine=0.998)": {},
                    "redundant (alpha=1)": {"alpha": "1.0"},
                    "no-redundancy (alpha=inf)": {"alpha": "inf"},
                    "reliable-prm (kappa=200)": {"kappa": "200.0"},
                    "paraphrase (within_cosine=0.9)": {"within_cosine": "0.9"},
                },
                "N": 32,
                "DORA budgets": "N/4 (judged), N (reported, first batch)",
                "baselines": ["temperature_sampling", "beam_search", "dvts", "rebase"],
                "batch_problems": 256,
                "schedule (cumulative batches at each look)": [1, 2, 4, 8, 16, 32, 64, 128],
                "max_rounds": 12,
            },
        },
        "estimates": {"fast": 4, "default": 8, "thorough": 20},
        "k": {"fast": 3.1628, "default": 3.3594, "thorough": 3.6047},
        "declared": ("a6a226e 2026-12-06 08:30 UTC"),
        "history": (
            "first declared with its check (ceb3a74, protocol and "
            "first result together; 4 looks of equal batches). "
            "Changed in dd85a65, before the thorough map was run (the"
            " default-mode verdict, fails, had been seen): looks "
            "after a doubling number of batches, decided comparisons "
            "stop sampling, per-comparison problems to decide, LOOKS "
            "= 6 (thorough up to 32 batches of 256). Then (this "
            "entry) changed AFTER that 6-look thorough map had been "
            "seen (18 of 20 comparisons decided; redundant and "
            "paraphrase vs temperature sampling undecided, about "
            "21,311 and 11,914 problems to decide): LOOKS = 8 and the"
            " thorough schedule extended to 128 batches (32,768 "
            "problems per world), so that every comparison can be "
            "decided; the whole map is rerun with k Bonferroni over 8"
            " looks in every mode. The extension is a sample-size "
            "choice made knowing the 6-look estimates; hypothesis, "
            "margin, error rate and control unchanged."
        ),
    },
    "optimal-multiround": {
        "quantity": (
            "per (world, N): paired accuracy difference acc(optimal "
            "with the world's κ @N) − acc(REBASE@N) over the problems"
            " (weighted majority vote, same problems and keys)"
        ),
        "tolerance": 0.0,
        "approximately": -0.02,
        "sense": "at-least",
        "fwer": 0.05,
        "looks": 1,
        "unit": "accuracy",
        "control": (
            "a miscalibrated κ (the world's κ × 1000: the optimum "
            "then puts nearly every rollout on the top candidate)"
        ),
        "region": {
            "fast": {
                "worlds": {
                    "paper-like": (
                        "Eq. 6 exact (kappa=15), redundant directions (alpha=3): "
                        "Assumption 1 broken"
                    )
                },
                "N": [16, 64],
                "batch_problems": 32,
                "seeds": 8,
                "max_rounds": 12,
                "optimal": ("dora_jax's 'optimal' rule, w = the PRM scores, κ = the world's (15)"),
            },
            "default": {
                "worlds": {
                    "independent": (
                        "assumptions hold: no redundancy (alpha=inf), Eq. 6 exact (kappa=15)"
                    ),
                    "paper-like": (
                        "Eq. 6 exact (kappa=15), redundant directions (alpha=3): "
                        "Assumption 1 broken"
                    ),
                    "noisy-prm": "PRM with logit noise (sigma=1): Eq. 6 broken",
                },
                "N": [16, 64],
                "batch_problems": 64,
                "seeds": 12,
                "max_rounds": 12,
                "optimal": ("dora_jax's 'optimal' rule, w = the PRM scores, κ = the world's (15)"),
            },
            "thorough": {
                "worlds": {
                    "independent": (
                        "assumptions hold: no redundancy (alpha=inf), Eq. 6 exact (kappa=15)"
                    ),
                    "paper-like": (
                        "Eq. 6 exact (kappa=15), redundant directions (alpha=3): "
                        "Assumption 1 broken"
                    ),
                    "noisy-prm": "PRM with logit noise (sigma=1): Eq. 6 broken",
                },
                "N": [16, 64],
                "batch_problems": 256,
                "seeds": 32,
                "max_rounds": 12,
                "optimal": ("dora_jax's 'optimal' rule, w = the PRM scores, κ = the world's (15)"),
            },
        },
        "estimates": {"fast": 2, "default": 6, "thorough": 6},
        "k": {"fast": 2.2414, "default": 2.6383, "thorough": 2.6383},
        "declared": ("6dbc5f0 2026-12-06 08:14 UTC"),
        "history": (
            "first declared with its check (2b5371a), judged in one "
            "world only. Extended in 2ce7d73, before rerunning, to "
            "three worlds: independent (the optimum's assumptions "
            "hold), paper-like (redundant directions: Assumption 1 "
            "broken), noisy-prm (Eq. 6 broken); Bonferroni over "
            "worlds × N (6 estimates) keeps the family-wise error "
            "rate 0.05 across the worlds; 12 seeds of 64 problems per"
            " world by default. Then (this entry) the FAST region "
            "only was changed after a fast run: with three worlds at "
            "4 seeds × 32 problems its control could not be decided "
            "(inconclusive, no flip), so the test suite's region is "
            "the paper-like world at 8 seeds × 32 problems (its "
            "earlier size). Default and thorough regions, tolerances "
            "and control unchanged."
        ),
    },
    "table1-latency": {
        "quantity": (
            "latency(REBASE@N) / latency(DORA@N/4) in a simulated "
            "search under the stated model (FLOPs / 9.36e+13 FLOP/s +"
            " 0.05 s per round), relative to Table 1's 3.95: the "
            "ratio of mean latencies per problem over every problem "
            "of every seed (paired), SE by the delta method over "
            "problems"
        ),
        "tolerance": 0.1,
        "approximately": 0.25,
        "sense": "magnitude",
        "fwer": 0.05,
        "looks": 1,
        "unit": "relative",
        "control": (
            "the same model without its per-round cost (latency ∝ "
            "FLOPs: the ratio is then the FLOPs ratio)"
        ),
        "region": {
            "fast": {
                "world": "paper-like preset",
                "N": 16,
                "problems": 32,
                "seeds": 3,
                "max_rounds": 12,
                "latency model": {
                    "throughput FLOP/s": 93600000000000.0,
                    "per-round cost s": 0.05,
                    "models": "Llama-3.2-1B policy, Qwen2.5-Math-PRM-7B, BGE-M3",
                },
            },
            "default": {
                "world": "paper-like preset",
                "N": 16,
                "problems": 64,
                "seeds": 20,
                "max_rounds": 12,
                "latency model": {
                    "throughput FLOP/s": 93600000000000.0,
                    "per-round cost s": 0.05,
                    "models": "Llama-3.2-1B policy, Qwen2.5-Math-PRM-7B, BGE-M3",
                },
            },
            "thorough": {
                "world": "paper-like preset",
                "N": 32,
                "problems": 256,
                "seeds": 8,
                "max_rounds": 12,
                "latency model": {
                    "throughput FLOP/s": 93600000000000.0,
                    "per-round cost s": 0.05,
                    "models": "Llama-3.2-1B policy, Qwen2.5-Math-PRM-7B, BGE-M3",
                },
            },
        },
        "estimates": {"fast": 1, "default": 1, "thorough": 1},
        "k": {"fast": 1.96, "default": 1.96, "thorough": 1.96},
        "declared": ("2ce7d73 2026-12-06 07:58 UTC"),
        "history": (
            "first declared with its check (2b5371a, protocol and "
            "first result together). Changed here, before rerunning, "
            "as table1-flops (the same runs): ratio of mean latencies"
            " over every problem, delta-method SE over paired "
            "problems, 20 seeds of 64 problems by default (was 4 "
            "per-seed ratios). Tolerances, latency model and control "
            "unchanged."
        ),
    },
    "adaptive-pareto": {
        "quantity": (
            "paired accuracy difference acc(adaptive DORA) − acc(fixed-N DORA frontier at the "
            "adaptive point's mean FLOPs, linear in log FLOPs between bracketing N)"
        ),
        "tolerance": 0.0,
        "approximately": -0.02,
        "sense": "at-least",
        "fwer": 0.05,
        "looks": 1,
        "unit": "accuracy",
        "control": "the stopping rule reads another problem's votes (problem p − 1's posterior)",
        "region": {
            "fast": {
                "world": "paper-like",
                "method": "dora",
                "fixed N": [4, 8, 16],
                "adaptive": {
                    "N": 8,
                    "threshold": 0.9,
                    "price": None,
                    "kappa": 15.0,
                    "cap": 2,
                    "min_votes": 2,
                },
                "problems": 64,
                "seed": 0,
                "slots": 16,
                "max_rounds": 16,
            },
            "default": {
                "world": "paper-like",
                "method": "dora",
                "fixed N": [4, 8, 16],
                "adaptive": {
                    "N": 8,
                    "threshold": 0.9,
                    "price": None,
                    "kappa": 15.0,
                    "cap": 2,
                    "min_votes": 2,
                },
                "problems": 160,
                "seed": 0,
                "slots": 16,
                "max_rounds": 16,
            },
            "thorough": {
                "world": "paper-like",
                "method": "dora",
                "fixed N": [4, 8, 16],
                "adaptive": {
                    "N": 8,
                    "threshold": 0.9,
                    "price": None,
                    "kappa": 15.0,
                    "cap": 2,
                    "min_votes": 2,
                },
                "problems": 800,
                "seed": 0,
                "slots": 16,
                "max_rounds": 24,
            },
        },
        "estimates": {"fast": 1, "default": 1, "thorough": 1},
        "k": {"fast": 1.96, "default": 1.96, "thorough": 1.96},
        "declared": "bb79d1b 2026-12-06 08:03 UTC",
        "history": (
            "declared together with its first result (bb79d1b: the claim, its control and the "
            "frontier evaluation in one commit), not separately pre-registered. A claim about "
            "this toolkit's extension (issue: adaptive compute), not a claim of the paper."
        ),
    },
}


FIELDS = ("quantity", "tolerance", "approximately", "sense", "fwer", "looks", "unit", "control")


def plain(value: Any) -> Any:
    """The JSON form of a region: dicts with string keys, lists, finite numbers, strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def mismatches(claim_id: str, protocol: Any, region: Any, modes: tuple[str, ...]) -> list[str]:
    """What differs between a claim's declaration in code (its `Protocol` and region function)
    and its entry in RECORD, one line per field (empty: they agree)."""
    entry = RECORD.get(claim_id)
    if entry is None:
        return [f"{claim_id}: no pre-registration entry"]
    out = [
        f"{claim_id}: {name} is {getattr(protocol, name)!r} in code, {entry[name]!r} registered"
        for name in FIELDS
        if getattr(protocol, name) != entry[name]
    ]
    for mode in modes:
        if plain(region(mode)) != entry["region"][mode]:
            out.append(f"{claim_id}: the {mode} region in code differs from the registered one")
    return out
