"""The text-level backend protocol: where real rollouts come from.

A backend generates one reasoning step for many partial solutions at once, scores partial
solutions with a process reward model (or a PRM-free scorer), embeds texts and counts tokens.
Every method takes a whole search round's worth of work in ONE call (all problems × all
candidates), so an engine such as vLLM batches it. `backends.host_world` turns any `Backend`
into the JAX engine's `World` (dora_jax.search), so the search that runs on the simulator runs
unchanged on a real model.

A partial solution is the problem text plus the reasoning steps so far. A step is the text the
policy produced up to and including its step delimiter ("\\n\\n", kept), or up to EOS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Prefix:
    """A partial solution: the problem and the steps generated so far (in order)."""

    problem: str
    steps: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The solution text so far (the steps concatenated)."""
        return "".join(self.steps)


@dataclasses.dataclass(frozen=True)
class StepRequest:
    """`n` independent samples of the next step of `prefix`.

    `final`: generate to EOS (no step delimiter), as the search's last round does. `seed`: the
    sampling seed of this request. Sample j of a request is the j-th draw of its seed, whatever
    `n` is (the toy backend hashes (seed, j, prefix); vLLM gives child j of a seeded request the
    seed `seed + j`), so a request for n' > n samples starts with the n samples of the smaller
    one: what lets policies and a sample bank share samples (backends.host_world).
    """

    prefix: Prefix
    n: int
    final: bool = False
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class StepSample:
    """One sampled step.

    text: the new step, its delimiter kept. tokens: policy tokens generated for it.
    finished: the solution ended (EOS, or the per-solution token cap was reached).
    truncated: it ended at the token cap without EOS (graded as such; no answer counts).
    resampled: not the draw that was asked for but a recorded sample reused in its place (a
    replay's `--on-miss resample`): the draws are no longer independent, a bias risk.
    """

    text: str
    tokens: int
    finished: bool
    truncated: bool = False
    resampled: bool = False


@dataclasses.dataclass(frozen=True)
class Usage:
    """Tokens a call consumed, for the ledger (prompt/context tokens read, tokens generated)."""

    input_tokens: int = 0
    output_tokens: int = 0


@runtime_checkable
class Backend(Protocol):
    """What the search needs from a model stack. Each method is one batched engine call."""

    def generate(self, requests: Sequence[StepRequest]) -> list[list[StepSample]]:
        """For each request, `request.n` samples of the next step (one engine call)."""
        ...

    def score(self, prefixes: Sequence[Prefix]) -> np.ndarray:
        """Float[n] in [0, 1]: the score of each partial solution's LAST step (one call)."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Float[n, E], unit rows: one embedding per text (one call)."""
        ...

    def prompt_tokens(self, problem: str) -> int:
        """Policy tokens of the templated prompt of `problem` (for the ledger)."""
        ...
