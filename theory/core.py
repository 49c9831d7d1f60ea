"""The verdict protocol: every claim declares what it measures and how it is judged before it
measures, returns measurements only, and the protocol alone turns them into a verdict.

A claim module registers one function with

    @claim("id", statement=..., source=..., protocol=Protocol(...), region=lambda mode: {...})
    def check(region: dict, control: bool) -> Measurement: ...

- `protocol` is declared at import time, before anything is measured: the quantity in words, the
  tolerance (and, where the paper says "approximately", a looser tolerance), the sense of the
  comparison, for Monte Carlo quantities the family-wise error rate from which the k·SE rule
  follows (Bonferroni over the components), and the deliberately wrong ingredient of the control.
  A claim without a finite tolerance is refused (`ValueError` at registration).
- `region(mode)` is the parameter region the claim is judged on ("fast" for the test suite,
  "default" for `dora verify`, "thorough"); the check receives it and measures on it.
- `check(region, control)` returns a `Measurement`: one estimate per component (a grid cell, a
  case, a comparison), with standard errors for Monte Carlo estimates. With `control=True` the
  same check runs with the declared wrong ingredient; its verdict must differ from the claim's.

Verdicts (computed by `judge`, nowhere else): "holds" (every component inside the tolerance,
its k·SE interval included), "holds-approximately" (every interval inside the looser tolerance,
some not entirely inside the tight one: for a Monte Carlo estimate whose interval straddles the
tight bound this is the decided part, "at least approximately"), "fails"
(some component outside the looser tolerance, interval included), "inconclusive" (an interval
straddles the looser tolerance; the record says how many samples would decide it).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from theory import preregistration

VerdictKind = Literal["holds", "holds-approximately", "fails", "inconclusive"]
VERDICTS: tuple[str, ...] = ("holds", "holds-approximately", "fails", "inconclusive")
MODES: tuple[str, ...] = ("fast", "default", "thorough")
Sense = Literal["at-most", "at-least", "magnitude"]
SENSES: tuple[str, ...] = ("at-most", "at-least", "magnitude")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a claim is judged, declared before measuring.

    Attributes:
      quantity: what is measured, in words (one estimate per component; the worst one decides).
      tolerance: the claim holds when every component satisfies the comparison with this bound.
      sense: "at-most" (q ≤ tolerance), "at-least" (q ≥ tolerance) or "magnitude" (|q| ≤ tol).
      approximately: a looser bound for "holds-approximately" (None: the claim is judged as an
        identity or a sharp statement, with no approximate verdict).
      fwer: Monte Carlo only: the family-wise error rate of the whole verdict; k follows from
        it by Bonferroni over the components (two-sided normal quantile of fwer / (2·m)).
      looks: Monte Carlo only: how many interim looks a sequential design may take; k is
        Bonferroni over components × looks, so stopping at any look keeps the error rate.
      control: the deliberately wrong (or, for a claim that fails, deliberately right)
        ingredient the control run is fed, in words.
      unit: the quantity's unit, for printing.
    """

    quantity: str
    tolerance: float
    control: str
    sense: Sense = "at-most"
    approximately: float | None = None
    fwer: float | None = None
    looks: int = 1
    unit: str = ""

    def __post_init__(self):
        if not isinstance(self.tolerance, int | float) or not math.isfinite(self.tolerance):
            raise ValueError(f"a claim needs a finite declared tolerance, got {self.tolerance!r}")
        if self.sense not in SENSES:
            raise ValueError(f"sense must be one of {SENSES}, got {self.sense!r}")
        if self.sense == "magnitude" and self.tolerance < 0:
            raise ValueError("a magnitude tolerance must be ≥ 0")
        if self.approximately is not None:
            looser = (
                self.approximately <= self.tolerance
                if self.sense == "at-least"
                else self.approximately >= self.tolerance
            )
            if not math.isfinite(self.approximately) or not looser:
                raise ValueError("the 'approximately' tolerance must be finite and looser")
        if not isinstance(self.looks, int) or self.looks < 1:
            raise ValueError(f"looks must be an integer ≥ 1, got {self.looks!r}")
        if self.fwer is not None and not 0 < self.fwer < 1:
            raise ValueError(f"fwer must be in (0, 1), got {self.fwer!r}")
        if not self.quantity or not self.control:
            raise ValueError("a claim declares its quantity and its control in words")

    def words(self) -> str:
        """The tolerance in words, e.g. 'holds if ≤ 0.01, approximately if ≤ 0.1'."""
        op = {"at-most": "≤", "at-least": "≥", "magnitude": "|·| ≤"}[self.sense]
        unit = f" {self.unit}" if self.unit else ""
        text = f"holds if {op} {self.tolerance:.3g}{unit}"
        if self.approximately is not None:
            text += f", approximately if {op} {self.approximately:.3g}{unit}"
        else:
            text += " (no approximate verdict)"
        return text


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What a check measured: one estimate per component, SEs for Monte Carlo estimates.

    Attributes:
      values: Float[M], one estimate per component (a grid cell, a case, a comparison).
      labels: M labels naming the components (for the worst one and the report).
      se: Float[M] standard errors (Monte Carlo), or None for exact computations.
      samples: the samples behind each estimate (draws, problems, cases, grid points).
      details: tables and diagnostics for the report (small); "figure" for a PNG spec.
    """

    values: Any
    labels: list[str]
    samples: int
    se: Any = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        values = np.atleast_1d(np.asarray(self.values, np.float64))
        if values.ndim != 1 or values.size == 0 or len(self.labels) != values.size:
            raise ValueError("a measurement needs one label per estimate and ≥ 1 estimate")
        if self.se is not None and np.shape(self.se) != values.shape:
            raise ValueError("one standard error per estimate")


@dataclasses.dataclass(frozen=True)
class Judgement:
    """The protocol's comparison of one measurement with the declared tolerance."""

    verdict: VerdictKind
    value: float
    component: str
    interval: list[float] | None
    k_se: float | None
    samples_to_decide: int | None


def k_for(fwer: float, components: int) -> float:
    """Two-sided Bonferroni k: P(any |Z_i| > k) ≤ fwer over `components` estimates."""
    return statistics.NormalDist().inv_cdf(1.0 - fwer / (2.0 * components))


def judge(protocol: Protocol, m: Measurement) -> Judgement:
    """The only place a verdict is decided: each component's k·SE interval against the bounds."""
    est = np.atleast_1d(np.asarray(m.values, np.float64))
    if m.se is not None and protocol.fwer is None:
        raise ValueError("a Monte Carlo measurement needs a declared family-wise error rate")
    if protocol.fwer is not None and m.se is None:
        raise ValueError("the protocol declares a Monte Carlo rule but the check gave no SE")
    k = None if protocol.fwer is None else k_for(protocol.fwer / protocol.looks, est.size)
    half = np.zeros_like(est) if m.se is None or k is None else k * np.asarray(m.se, np.float64)
    lo, hi = est - half, est + half
    tight = protocol.tolerance
    loose = protocol.tolerance if protocol.approximately is None else protocol.approximately
    shown_lo, shown_hi = lo, hi
    if protocol.sense == "magnitude":
        straddle = (lo <= 0) & (hi >= 0)
        lo, hi = (
            np.where(straddle, 0.0, np.minimum(np.abs(lo), np.abs(hi))),
            np.maximum(np.abs(lo), np.abs(hi)),
        )
        shown_lo, shown_hi, est_cmp = lo, hi, np.abs(est)
    elif protocol.sense == "at-least":  # q ≥ t  ⇔  −q ≤ −t
        lo, hi, tight, loose = -hi, -lo, -tight, -loose
        est_cmp = -est
    else:
        est_cmp = est
    if np.any(np.isnan(est)):
        worst = int(np.argmax(np.isnan(est)))
        verdict: VerdictKind = "fails"
    else:
        worst = int(np.argmax(hi))
        if hi.max() <= tight:
            verdict = "holds"
        elif lo.max() > loose:
            verdict = "fails"
            worst = int(np.argmax(lo))
        elif hi.max() <= loose:
            verdict = "holds-approximately"
        else:
            verdict = "inconclusive"
    to_decide = None
    if verdict == "inconclusive":
        open_ = (lo <= loose) & (hi > loose)
        gap = np.abs(est_cmp[open_] - loose)
        needed = np.where(gap > 0, (half[open_] / np.maximum(gap, 1e-300)) ** 2, np.inf)
        factor = float(needed.max())
        to_decide = None if not math.isfinite(factor) else math.ceil(m.samples * factor)
    interval = None
    if m.se is not None:
        interval = [float(shown_lo[worst]), float(shown_hi[worst])]
    return Judgement(
        verdict=verdict,
        value=float(abs(est[worst]) if protocol.sense == "magnitude" else est[worst]),
        component=m.labels[worst],
        interval=interval,
        k_se=k,
        samples_to_decide=to_decide,
    )


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A judged claim: the declaration, the measurement and the protocol's verdict.

    Attributes:
      claim_id, statement, source: the claim and where the paper states it.
      verdict: holds | holds-approximately | fails | inconclusive (from `judge` only).
      quantity: what was measured, in words; value: the deciding (worst) component's estimate;
      component: which one; interval: its k·SE interval (Monte Carlo) or None.
      tolerance: the declared rule in words; region: the declared region; samples: per estimate.
      k_se, fwer: the Monte Carlo rule (None for exact checks); samples_to_decide: for an
        inconclusive verdict, the samples per estimate that would decide it.
      control: True for the control run; ingredient: the control's ingredient in words.
      declared: the commit and date of the claim's pre-registration (theory/preregistration.py).
      details: the check's tables and diagnostics.
    """

    claim_id: str
    statement: str
    source: str
    verdict: VerdictKind
    quantity: str
    value: float
    component: str
    interval: list[float] | None
    tolerance: str
    region: dict[str, Any]
    samples: int
    k_se: float | None
    fwer: float | None
    samples_to_decide: int | None
    control: bool
    ingredient: str
    declared: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    values: Any = None  # every component's estimate (for figures; not in the JSON record)
    ses: Any = None
    protocol: Protocol | None = None

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("values", "ses", "protocol"):
            out.pop(key)
        return out


@dataclasses.dataclass(frozen=True)
class Claim:
    claim_id: str
    statement: str
    source: str
    protocol: Protocol
    region: Callable[[str], dict[str, Any]]
    check: Callable[[dict[str, Any], bool], Measurement]
    prepare: Callable[[dict[str, Any]], None] | None = None


CLAIMS: dict[str, Claim] = {}


def claim(
    claim_id: str,
    *,
    statement: str,
    source: str,
    protocol: Protocol | None,
    region: Callable[[str], dict[str, Any]],
    prepare: Callable[[dict[str, Any]], None] | None = None,
):
    """Registers `check(region, control) -> Measurement` under `claim_id` with its protocol;
    `prepare(region)`, if given, starts work ahead of the run (compiles) and measures nothing.

    Raises:
      ValueError: a claim without a declared protocol (tolerance), or an id registered twice.
    """
    if not isinstance(protocol, Protocol):
        raise ValueError(f"claim {claim_id!r} has no declared protocol (quantity, tolerance)")
    if not source or "shared" in source or ".md" in source:
        raise ValueError(f"claim {claim_id!r} must cite the paper's sections and equations")

    def register(fn: Callable[[dict[str, Any], bool], Measurement]):
        if claim_id in CLAIMS:
            raise ValueError(f"claim {claim_id!r} registered twice")
        CLAIMS[claim_id] = Claim(claim_id, statement, source, protocol, region, fn, prepare)
        return fn

    return register


def run_claim(claim_id: str, mode: str = "default", *, control: bool = False) -> Verdict:
    """Measures claim `claim_id` on its declared region for `mode` and judges it."""
    import theory

    theory.load_claims()
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if claim_id not in CLAIMS:
        raise ValueError(f"unknown claim {claim_id!r}; choose one of {', '.join(CLAIMS)}")
    c = CLAIMS[claim_id]
    # The declaration in code must be the pre-registered one (theory/preregistration.py).
    drift = preregistration.mismatches(claim_id, c.protocol, c.region, (mode,))
    if drift:
        raise RuntimeError("; ".join(drift) + " (register the change before measuring)")
    entry = preregistration.RECORD[claim_id]
    region = c.region(mode)
    m = c.check(region, control)
    if not isinstance(m, Measurement):
        raise TypeError(f"check for {claim_id} must return a Measurement, not a verdict")
    if c.protocol.fwer is not None and np.size(m.values) != entry["estimates"][mode]:
        raise RuntimeError(
            f"{claim_id}: {np.size(m.values)} estimates measured, {entry['estimates'][mode]} "
            f"pre-registered for mode {mode} (the k of the k·SE rule depends on it)"
        )
    j = judge(c.protocol, m)
    p = c.protocol
    rule = p.words()
    if j.k_se is not None:
        rule += (
            f"; Monte Carlo: each of the {np.size(m.values)} estimate(s) ± {j.k_se:.2f}·SE "
            f"(Bonferroni{f' over {p.looks} looks and' if p.looks > 1 else ''} over the "
            f"estimates: family-wise error rate {p.fwer:g})"
        )
    return Verdict(
        claim_id=claim_id,
        statement=c.statement,
        source=c.source,
        verdict=j.verdict,
        quantity=p.quantity,
        value=j.value,
        component=j.component,
        interval=j.interval,
        tolerance=rule,
        region=region,
        samples=m.samples,
        k_se=j.k_se,
        fwer=p.fwer,
        samples_to_decide=j.samples_to_decide,
        control=control,
        ingredient=p.control if control else "as in the paper",
        declared=entry["declared"],
        details=m.details,
        values=np.atleast_1d(np.asarray(m.values, np.float64)),
        ses=None if m.se is None else np.asarray(m.se, np.float64),
        protocol=p,
    )


@functools.cache
def run_cached(claim_id: str, mode: str, *, control: bool = False) -> Verdict:
    """`run_claim`, memoized: checks are deterministic (fixed seeds), so a test session that
    reads one claim from several test files runs it once."""
    return run_claim(claim_id, mode, control=control)
