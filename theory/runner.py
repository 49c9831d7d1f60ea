"""Runs the registered claims (and their controls) and reports them: a UTF-8 text table, JSON
records and a markdown report with one figure per claim (tolerance drawn).

results = run(["eq5-success"], mode="default", controls=True)   # list[Result]
print(verdict_table(results))
write_report(Path("runs/verify"), results, mode="default")        # report.md, verdicts.json, PNGs
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

import theory
from backends.files import atomic_write
from theory import preregistration, simulated
from theory.core import CLAIMS, MODES, Verdict, run_claim

theory.load_claims()

# Claims run on CLAIM_WORKERS threads (their results printed in registration order): the analytic
# claims' XLA work (compiles and runs, which release the GIL) overlaps one another and the
# simulated searches, which run on their own threads (`theory.simulated`). Every check takes its
# randomness from its own fixed seeds and keys and its float64 from a thread-local
# `jax.enable_x64`, so a verdict does not depend on which thread ran it or when.
CLAIM_WORKERS = 2


@dataclasses.dataclass(frozen=True)
class Result:
    verdict: Verdict
    seconds: float
    control: Verdict | None = None
    control_seconds: float = 0.0

    @property
    def flips(self) -> bool | None:
        """Whether the control's verdict differs from the claim's (None without a control)."""
        return None if self.control is None else self.control.verdict != self.verdict.verdict


def claim_ids() -> list[str]:
    """Every claim id in `theory.CLAIM_IDS`' order (the paper's), whatever the import order."""
    return [i for i in theory.CLAIM_IDS if i in CLAIMS] + [
        i for i in CLAIMS if i not in theory.CLAIM_IDS
    ]


def check_ids(ids: Sequence[str]) -> None:
    """Raises ValueError (one line) for an unknown claim id."""
    unknown = [i for i in ids if i not in CLAIMS]
    if unknown:
        raise ValueError(
            f"unknown claim id(s) {', '.join(unknown)}; choose from {', '.join(CLAIMS)}"
        )


def run(
    ids: Sequence[str] | None = None,
    mode: str = "default",
    progress: Callable[[str], None] | None = None,
    *,
    controls: bool = False,
) -> list[Result]:
    """Runs the claims `ids` (default: all, in registration order) in `mode`, each followed by
    its control when `controls`."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    ids = claim_ids() if ids is None else list(ids)
    check_ids(ids)
    drift = [
        d
        for claim_id in ids
        for d in preregistration.mismatches(
            claim_id, CLAIMS[claim_id].protocol, CLAIMS[claim_id].region, (mode,)
        )
    ]
    if drift:  # before any claim runs: a declaration that drifted is never measured
        raise RuntimeError("; ".join(drift) + " (register the change before measuring)")
    for claim_id in ids:  # register the claims' compiles, then start them in the background
        c = CLAIMS[claim_id]
        if c.prepare is not None:
            c.prepare(c.region(mode))
    simulated.launch()

    def one(claim_id: str) -> Result:
        start = time.perf_counter()
        verdict = run_claim(claim_id, mode)
        seconds = time.perf_counter() - start
        control, control_seconds = None, 0.0
        if controls:
            start = time.perf_counter()
            control = run_claim(claim_id, mode, control=True)
            control_seconds = time.perf_counter() - start
        return Result(verdict, seconds, control, control_seconds)

    def announce(claim_id: str) -> None:
        if progress is not None:
            progress(claim_id)

    def announce_control(claim_id: str) -> None:
        if progress is not None and controls:
            progress(f"{claim_id} (control)")

    if jax.process_count() > 1 or CLAIM_WORKERS == 1:
        # Multi-host: every process issues the simulated claims' collectives in one order.
        results = []
        for claim_id in ids:
            announce(claim_id)
            result = one(claim_id)
            announce_control(claim_id)
            results.append(result)
        return results
    pool = concurrent.futures.ThreadPoolExecutor(CLAIM_WORKERS, thread_name_prefix="theory-claim")
    try:
        futures = [pool.submit(one, claim_id) for claim_id in ids]
        results = []
        for claim_id, future in zip(ids, futures, strict=True):
            announce(claim_id)
            results.append(future.result())
            announce_control(claim_id)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars/arrays, tuples, non-finite floats as strings)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def record(result: Result) -> dict[str, Any]:
    """The JSON record of one claim: verdict, quantity, tolerance, region, samples, interval
    (Monte Carlo), and with a control its verdict and whether it flips."""
    out = jsonable(result.verdict.to_dict())
    out.pop("control")
    out.pop("ingredient")
    out["seconds"] = round(result.seconds, 3)
    if result.control is not None:
        c = result.control
        out["control"] = {
            "ingredient": c.ingredient,
            "verdict": c.verdict,
            "value": jsonable(c.value),
            "component": c.component,
            "interval": jsonable(c.interval),
            "flips": result.flips,
            "seconds": round(result.control_seconds, 3),
        }
    return out


def _num(x: float) -> str:
    return f"{x:.3g}" if x == x else "nan"


def measured_words(v: Verdict) -> str:
    """'<quantity>: worst <value> at <component>[, k·SE interval [lo, hi]], n samples'."""
    text = f"{v.quantity}: worst {_num(v.value)} at {v.component}"
    if v.interval is not None:
        text += f", interval [{_num(v.interval[0])}, {_num(v.interval[1])}]"
    count = int(np.size(v.values)) if v.values is not None else 1
    if v.interval is None:
        text += f"; exact, {count} estimate(s)"
    else:
        text += f"; {count} estimate(s) of {v.samples} samples each"
    if v.samples_to_decide is not None:
        text += f"; about {v.samples_to_decide} would decide it"
    return text


def verdict_table(results: Sequence[Result], width: int = 100) -> str:
    """A summary table (claim, verdict, control, time), then per claim the measured quantity in
    words with its tolerance and, where run, the control."""
    has_control = any(r.control is not None for r in results)
    head = ["claim", "verdict", *(["control"] if has_control else []), "time"]
    rows = [head]
    for r in results:
        v = r.verdict
        row = [v.claim_id, v.verdict]
        if has_control:
            mark = "—" if r.control is None else r.control.verdict
            row.append(mark + ("" if r.flips in (None, True) else "  (does NOT flip)"))
        row.append(f"{r.seconds + r.control_seconds:.1f} s")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("─" * w for w in widths))

    def wrapped(label: str, text: str) -> list[str]:
        return textwrap.wrap(
            text, width, initial_indent=f"  {label}", subsequent_indent=" " * (2 + len(label))
        )

    for r in results:
        v = r.verdict
        lines += ["", f"{v.claim_id}: {v.verdict}  ({v.source})"]
        lines += wrapped("measured:  ", measured_words(v))
        lines += wrapped("tolerance: ", v.tolerance)
        if r.control is not None:
            c = r.control
            flip = "flips" if r.flips else "does NOT flip"
            lines += wrapped(
                "control:   ",
                f"{c.ingredient} → {c.verdict} ({flip}); worst {_num(c.value)} at {c.component}",
            )
    return "\n".join(lines)


def _figure(v: Verdict, out: Path) -> Path | None:
    """A PNG of every component's estimate (sorted; k·SE bars for Monte Carlo) with the
    declared tolerance (solid) and the 'approximately' tolerance (dashed) drawn; log axis
    where the judged values span small scales."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = v.protocol
    values = np.asarray(v.values, np.float64)
    if p is None or values.size == 0:
        return None
    shown = np.abs(values) if p.sense == "magnitude" else values
    order = np.argsort(shown, kind="stable")
    step = max(1, order.size // 2000)
    order = order[::step]
    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        x = np.arange(order.size) * step
        if v.ses is not None and v.k_se is not None:
            ax.errorbar(x, shown[order], yerr=v.k_se * np.asarray(v.ses)[order], fmt="o", ms=3)
        else:
            ax.plot(x, shown[order], "o", ms=3)
        ax.axhline(p.tolerance, color="g", label=f"tolerance {p.tolerance:.3g}")
        if p.approximately is not None:
            ax.axhline(p.approximately, color="orange", ls="--",
                       label=f"approximately {p.approximately:.3g}")  # fmt: skip
        positive = shown[shown > 0]
        bounds = [b for b in (p.tolerance, p.approximately) if b is not None and b > 0]
        if (
            positive.size
            and bounds
            and (min(bounds) < 1e-3 or positive.max() / positive.min() > 1e3)
        ):
            if np.all(shown > 0):
                ax.set_yscale("log")
            else:
                ax.set_yscale("symlog", linthresh=min([*bounds, positive.min()]))
                if np.all(shown >= 0):
                    ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
        ax.set_xlabel("component (sorted)")
        ax.set_ylabel(textwrap.shorten(v.quantity, 45, placeholder="…"), fontsize=7)
        ax.set_title(f"{v.claim_id}: {v.verdict}", fontsize=9)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(fig)
    path = out / f"{v.claim_id}.png"
    atomic_write(path, buffer.getvalue())
    return path


def report_markdown(results: Sequence[Result], mode: str, images: dict[str, str]) -> str:
    lines = [
        "# dora verify: claim-by-claim verdicts",
        "",
        f"Mode: `{mode}`. Each claim declares its quantity, region, tolerance and (Monte Carlo) "
        "family-wise error rate before measuring; the protocol alone turns the measurements "
        "into a verdict. Controls feed the same check a deliberately wrong ingredient.",
        "",
        "```",
        verdict_table(results),
        "```",
    ]
    for r in results:
        v = r.verdict
        details = {k: val for k, val in v.details.items() if k != "figure"}
        lines += ["", f"## `{v.claim_id}`: {v.verdict}", "", f"*Claim ({v.source}):* {v.statement}"]
        lines += ["", f"- region: `{json.dumps(jsonable(v.region), ensure_ascii=False)}`"]
        if details:
            lines += ["", "<details><summary>details</summary>", "", "```json"]
            lines.append(json.dumps(jsonable(details), indent=1, ensure_ascii=False))
            lines += ["```", "", "</details>"]
        if v.claim_id in images:
            lines += ["", f"![{v.claim_id}]({images[v.claim_id]})"]
    return "\n".join(lines) + "\n"


def write_report(
    out: Path, results: Sequence[Result], mode: str, *, figures: bool = True
) -> list[Path]:
    """Writes report.md, verdicts.json and PNG figures into `out` (each file atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    written: list[Path] = []
    if figures:
        for r in results:
            path = _figure(r.verdict, out)
            if path is not None:
                images[r.verdict.claim_id] = path.name
                written.append(path)
    report = out / "report.md"
    atomic_write(report, report_markdown(results, mode, images).encode())
    verdicts = out / "verdicts.json"
    text = json.dumps([record(r) for r in results], indent=1, ensure_ascii=False)
    atomic_write(verdicts, text.encode())
    return [report, verdicts, *written]
