"""The verdict record every claim check returns, and the registry `dora verify` runs.

A claim module defines one function decorated with `@claim("id", statement=..., source=...)`
taking `mode` ("fast" for the test suite, "default" for `dora verify`, "thorough") and returning a
`Verdict`. Checks are deterministic (fixed seeds) and statistical ones declare their tolerance as
k standard errors with the implied false-failure rate (STYLE.md §12).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

VerdictKind = Literal["holds", "holds-approximately", "fails", "not-applicable"]
VERDICTS: tuple[str, ...] = ("holds", "holds-approximately", "fails", "not-applicable")
MODES: tuple[str, ...] = ("fast", "default", "thorough")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a claim check found.

    Attributes:
      claim_id: the claim's id (e.g. "prop2-kl").
      statement: the claim in words, with the paper's equation/proposition number.
      verdict: holds | holds-approximately | fails | not-applicable.
      measured: the measured quantity (a number or a small dict of numbers).
      error: its error, or a confidence interval (a number, a [lo, hi] pair, or a dict).
      tolerance: the tolerance the verdict was judged against, and why (words + numbers).
      region: the parameter region explored (a dict).
      details: anything else worth reporting (tables for the report; small).
    """

    claim_id: str
    statement: str
    verdict: VerdictKind
    measured: Any
    error: Any
    tolerance: str
    region: dict[str, Any]
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Claim:
    claim_id: str
    statement: str
    source: str
    check: Callable[[str], Verdict]


CLAIMS: dict[str, Claim] = {}


def claim(claim_id: str, *, statement: str, source: str):
    """Registers a check function `check(mode) -> Verdict` under `claim_id`."""

    def register(fn: Callable[[str], Verdict]) -> Callable[[str], Verdict]:
        if claim_id in CLAIMS:
            raise ValueError(f"claim {claim_id!r} registered twice")
        CLAIMS[claim_id] = Claim(claim_id, statement, source, fn)
        return fn

    return register


def run_claim(claim_id: str, mode: str = "default") -> Verdict:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if claim_id not in CLAIMS:
        raise ValueError(f"unknown claim {claim_id!r}; choose one of {', '.join(CLAIMS)}")
    verdict = CLAIMS[claim_id].check(mode)
    if verdict.claim_id != claim_id:
        raise AssertionError(f"check for {claim_id} returned a verdict for {verdict.claim_id}")
    return verdict
