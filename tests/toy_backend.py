"""A deterministic toy text backend (no model) for the host-world and bench tests.

Problems ask for a number; each step is "Step k: ...\\n\\n"; a solution ends after ≥ 1 step with
probability 0.35 per step (always in a final round) with "\\boxed{x}", x the right answer with
probability 0.6. Scores and embeddings are hashes of the text. Same seed → same samples.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np

from backends.protocol import Prefix, StepRequest, StepSample


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


class ToyBackend:
    embed_dim = 8

    def __init__(self, answers: dict[str, str], *, wrong: tuple[str, ...] = ("1", "2", "3")):
        self.answers = answers
        self.wrong = wrong
        self.calls = {"generate": 0, "score": 0, "embed": 0}
        self.requests: list[list[StepRequest]] = []

    def generate(self, requests):
        self.calls["generate"] += 1
        self.requests.append(list(requests))
        out = []
        for req in requests:
            samples = []
            for i in range(req.n):
                rng = random.Random(req.seed * 1000003 + i)
                k = len(req.prefix.steps) + 1
                ends = req.final or (k >= 2 and rng.random() < 0.35)
                if ends:
                    right = rng.random() < 0.6
                    x = self.answers[req.prefix.problem] if right else rng.choice(self.wrong)
                    text = f"Step {k}: so the answer is \\boxed{{{x}}}"
                else:
                    text = f"Step {k}: idea {rng.randint(0, 3)}\n\n"
                samples.append(StepSample(text, tokens=len(text.split()), finished=ends))
            out.append(samples)
        return out

    def score(self, prefixes: list[Prefix]):
        self.calls["score"] += 1
        return np.asarray([(_hash(p.text) % 1000) / 1000.0 for p in prefixes], np.float32)

    def embed(self, texts):
        self.calls["embed"] += 1
        rows = [np.random.default_rng(_hash(t) % 2**32).normal(size=self.embed_dim) for t in texts]
        e = np.asarray(rows, np.float32)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    def prompt_tokens(self, problem: str) -> int:
        return 20 + len(problem.split())
