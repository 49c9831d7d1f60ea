"""backends.toy: the scripted model-free text backend (`--backend toy`) keeps its promises.

Statistical check: the share of right answers among many finished samples of one problem is
compared with the problem's p within k = 5 standard errors (two-sided false-failure rate of a
normal approximation: about 6e-7 per check)."""

from __future__ import annotations

import math

import numpy as np

from backends.datasets import Problem
from backends.protocol import Backend, Prefix, StepRequest
from backends.toy import DEFAULTS, VERSION, ToyBackend

K_SE = 5.0
PROBLEMS = [
    Problem(f"q{i}", f"Question {i}: what is {i} * 3?", str(3 * i), None, None, "toy")
    for i in range(4)
]


def _backend() -> ToyBackend:
    return ToyBackend.for_problems(PROBLEMS)


def test_it_is_a_text_backend_and_names_its_settings():
    assert isinstance(_backend(), Backend)
    assert ToyBackend.settings() == {"backend": VERSION, **DEFAULTS}


def test_same_seed_same_samples_other_seed_other_samples():
    req = [StepRequest(Prefix(PROBLEMS[0].problem, ("Step 1: idea 0 of 1\n\n",)), n=6, seed=7)]
    a, b = _backend().generate(req), _backend().generate(req)
    assert a == b
    other = _backend().generate([StepRequest(req[0].prefix, n=6, seed=8)])
    assert [s.text for s in other[0]] != [s.text for s in a[0]]


def test_final_samples_end_right_with_the_problems_probability():
    backend = _backend()
    n = 2000
    for p in PROBLEMS:
        samples = backend.generate([StepRequest(Prefix(p.problem), n=n, final=True, seed=1)])[0]
        assert all(s.finished and s.text.count("\\boxed{") == 1 for s in samples)
        right = sum(f"\\boxed{{{p.answer}}}" in s.text for s in samples) / n
        q = backend.p_right(p.problem)
        assert DEFAULTS["p_low"] <= q <= DEFAULTS["p_high"]
        assert abs(right - q) < K_SE * math.sqrt(q * (1 - q) / n), (p.id, right, q)


def test_the_scorer_ranks_right_above_wrong_on_average_and_stays_in_unit_interval():
    backend = _backend()
    p = PROBLEMS[2]
    samples = backend.generate([StepRequest(Prefix(p.problem), n=400, final=True, seed=3)])[0]
    prefixes = [Prefix(p.problem, (s.text,)) for s in samples]
    scores = backend.score(prefixes)
    assert scores.dtype == np.float32 and ((scores >= 0) & (scores <= 1)).all()
    right = np.array([f"\\boxed{{{p.answer}}}" in s.text for s in samples])
    assert right.any() and (~right).any()
    gap = DEFAULTS["score_right"] - DEFAULTS["score_wrong"]
    assert scores[right].mean() - scores[~right].mean() > gap / 2


def test_hashed_embeddings_are_unit_rows_and_shared_words_lie_closer():
    e = _backend().embed(["idea 1 of 2 so x", "idea 1 of 2 so y", "completely different words"])
    assert e.shape == (3, ToyBackend.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-6)
    assert e[0] @ e[1] > e[0] @ e[2]
