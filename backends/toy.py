"""A model-free text backend for smoke runs (`dora bench --backend toy`) and the tests.

It implements the text `Backend` protocol (backends.protocol) with a script instead of models, so
bench, its files and its reports run on any dataset in seconds on a CPU. Its accuracies say
nothing about any method on a real model; they only exercise the machinery.

- Solver: a solution is a chain of steps "Step k: ...\\n\\n". After step 2 or later it ends with
  probability `finish` per step (always in a final round) with "\\boxed{x}": x is the problem's
  reference answer with a per-problem probability p (drawn once per problem from its text,
  uniform in [`p_low`, `p_high`]), else a wrong answer (an integer other than the reference).
- Scorer (a noisy PRM): a finished solution scores around `score_right` if right and
  `score_wrong` if wrong, an unfinished one around 0.5, plus noise of width `noise`; clipped to
  [0, 1].
- Embedder: hashed bag of words (feature hashing into `embed_dim` signed buckets), unit rows, so
  solutions sharing their words lie close.

Every draw is a hash of (request seed, sample index, prefix) or of the text: the same request
seeds give the same samples, scores and embeddings on any machine, in any batch.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence

import numpy as np

from backends.datasets import Problem
from backends.protocol import Prefix, StepRequest, StepSample

__all__ = ["DEFAULTS", "VERSION", "ToyBackend"]

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_WORDS = re.compile(r"\w+")


# The scripted distributions' defaults (ToyBackend's keyword arguments; a run's fingerprint).
DEFAULTS = {
    "p_low": 0.2,
    "p_high": 0.9,
    "finish": 0.35,
    "noise": 0.5,
    "score_right": 0.7,
    "score_wrong": 0.3,
}
VERSION = "toy-v1"  # bump when the script changes what a seed gives


def _hash(*parts: object) -> int:
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) from a hash of `parts`."""
    return _hash(*parts) / 2**64


class ToyBackend:
    """The scripted noisy solver, noisy scorer and hashed embedder (see the module docstring).

    Args:
        answers: problem statement → reference answer (what `Prefix.problem` holds).
        p_low, p_high: the range of the per-problem probability that a solution is right.
        finish: the probability that a solution ends after each step from step 2 on.
        noise: the width of the scorer's uniform noise.
        score_right, score_wrong: the scorer's centre for finished right / wrong solutions.

    `calls` counts the backend calls by kind and `requests` keeps every generate call's requests
    (the tests read both).
    """

    embed_dim = 16

    def __init__(
        self,
        answers: Mapping[str, str],
        *,
        p_low: float = DEFAULTS["p_low"],
        p_high: float = DEFAULTS["p_high"],
        finish: float = DEFAULTS["finish"],
        noise: float = DEFAULTS["noise"],
        score_right: float = DEFAULTS["score_right"],
        score_wrong: float = DEFAULTS["score_wrong"],
    ):
        if not 0.0 <= p_low <= p_high <= 1.0:
            raise ValueError(f"need 0 <= p_low <= p_high <= 1, got {p_low}, {p_high}")
        if not 0.0 < finish <= 1.0:
            raise ValueError(f"finish must be in (0, 1], got {finish}")
        self.answers = dict(answers)
        self.p_low, self.p_high, self.finish = p_low, p_high, finish
        self.noise, self.score_right, self.score_wrong = noise, score_right, score_wrong
        self.calls = {"generate": 0, "score": 0, "embed": 0}
        self.requests: list[list[StepRequest]] = []

    @classmethod
    def for_problems(cls, problems: Sequence[Problem], **knobs: float) -> ToyBackend:
        """The backend over dataset problems (their statements and reference answers)."""
        return cls({p.problem: p.answer for p in problems}, **knobs)

    @staticmethod
    def settings() -> dict[str, object]:
        """What defines the toy's samples (for a run's fingerprint): its version and defaults."""
        return {"backend": VERSION, **DEFAULTS}

    def p_right(self, problem: str) -> float:
        """The probability that a solution of `problem` ends with the reference answer."""
        return self.p_low + (self.p_high - self.p_low) * _unit("p", problem)

    def _wrong(self, answer: str, rng: random.Random) -> str:
        while True:
            x = str(rng.randint(0, 999))
            if x != answer.strip():
                return x

    def generate(self, requests: Sequence[StepRequest]) -> list[list[StepSample]]:
        self.calls["generate"] += 1
        self.requests.append(list(requests))
        out = []
        for req in requests:
            answer = self.answers[req.prefix.problem]
            k = len(req.prefix.steps) + 1
            samples = []
            for i in range(req.n):
                rng = random.Random(_hash("step", req.seed, i, req.prefix.problem, req.prefix.text))
                ends = req.final or (k >= 2 and rng.random() < self.finish)
                if ends:
                    right = rng.random() < self.p_right(req.prefix.problem)
                    x = answer if right else self._wrong(answer, rng)
                    text = f"Step {k}: so the answer is $\\boxed{{{x}}}$"
                else:
                    text = f"Step {k}: idea {rng.randint(0, 3)} of {rng.randint(0, 9)}\n\n"
                samples.append(StepSample(text, tokens=len(text.split()), finished=ends))
            out.append(samples)
        return out

    def score(self, prefixes: Sequence[Prefix]) -> np.ndarray:
        self.calls["score"] += 1
        scores = []
        for p in prefixes:
            found = _BOXED.findall(p.text)
            if not found:
                centre = 0.5
            elif found[-1].strip() == self.answers[p.problem].strip():
                centre = self.score_right
            else:
                centre = self.score_wrong
            noisy = centre + self.noise * (_unit("score", p.problem, p.text) - 0.5)
            scores.append(min(1.0, max(0.0, noisy)))
        return np.asarray(scores, np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls["embed"] += 1
        rows = np.zeros((len(texts), self.embed_dim), np.float32)
        for row, text in zip(rows, texts, strict=True):
            for word in _WORDS.findall(text.lower()):
                h = _hash("word", word)
                row[h % self.embed_dim] += 1.0 if (h >> 32) & 1 else -1.0
            if not row.any():
                row[0] = 1.0
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    def prompt_tokens(self, problem: str) -> int:
        return 20 + len(problem.split())
