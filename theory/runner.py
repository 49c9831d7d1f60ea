"""Runs the registered claims and reports them: a plain-text verdict table and a markdown report.

verdicts = run(["eq5-success"], mode="default")      # list[Result]
print(verdict_table(verdicts))
write_report(Path("runs/verify"), verdicts, mode="default")   # report.md, verdicts.json, PNGs
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import theory  # noqa: F401  (fills the registry)
from backends.files import atomic_write
from theory.core import CLAIMS, MODES, Verdict, run_claim


@dataclasses.dataclass(frozen=True)
class Result:
    verdict: Verdict
    seconds: float


def claim_ids() -> list[str]:
    return list(CLAIMS)


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
) -> list[Result]:
    """Runs the claims `ids` (default: all registered, in registration order) in `mode`."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    ids = list(CLAIMS) if ids is None else list(ids)
    check_ids(ids)
    results = []
    for claim_id in ids:
        if progress is not None:
            progress(claim_id)
        start = time.perf_counter()
        verdict = run_claim(claim_id, mode)
        results.append(Result(verdict, time.perf_counter() - start))
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
    out = jsonable(result.verdict.to_dict())
    out["seconds"] = round(result.seconds, 3)
    return out


def _short(value: Any, width: int = 60) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, dict):
        text = ", ".join(f"{k}={_short(v, width)}" for k, v in value.items())
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def verdict_table(results: Sequence[Result]) -> str:
    """One line per claim: id, verdict, seconds, measured (shortened)."""
    rows = [("claim", "verdict", "time", "measured")]
    for r in results:
        v = r.verdict
        rows.append((v.claim_id, v.verdict, f"{r.seconds:.1f}s", _short(v.measured)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=False)) + "  " + row[3]
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 8)
    return "\n".join(lines)


def _figure(claim_id: str, spec: dict[str, Any], out: Path) -> Path | None:
    """A PNG from a claim's details["figure"]: {"scatter": {x, y}} or {"series": {name: {x, y}}}."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        if "scatter" in spec:
            ax.scatter(spec["scatter"]["x"], spec["scatter"]["y"], s=4, alpha=0.5)
        for name, series in spec.get("series", {}).items():
            if "err" in series:
                ax.errorbar(series["x"], series["y"], yerr=series["err"], marker="o", label=name)
            else:
                ax.plot(series["x"], series["y"], marker="o", label=name)
        if spec.get("series"):
            ax.legend()
        if spec.get("logx"):
            ax.set_xscale("log")
        ax.set_xlabel(spec.get("xlabel", ""))
        ax.set_ylabel(spec.get("ylabel", ""))
        ax.set_title(spec.get("title", claim_id), fontsize=9)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(fig)
    path = out / f"{claim_id}.png"
    atomic_write(path, buffer.getvalue())
    return path


def report_markdown(results: Sequence[Result], mode: str, images: dict[str, str]) -> str:
    lines = [
        "# dora verify: claim-by-claim verdicts",
        "",
        f"Mode: `{mode}`. Each claim is computed numerically; statistical checks use fixed seeds "
        "and declared k·SE tolerances (STYLE.md §12).",
        "",
        "| claim | verdict | time (s) |",
        "|---|---|---|",
    ]
    for r in results:
        lines.append(f"| `{r.verdict.claim_id}` | **{r.verdict.verdict}** | {r.seconds:.2f} |")
    for r in results:
        v = r.verdict
        source = CLAIMS[v.claim_id].source if v.claim_id in CLAIMS else ""
        details = {k: val for k, val in v.details.items() if k != "figure"}
        lines += [
            "",
            f"## `{v.claim_id}` — {v.verdict}",
            "",
            f"*Claim ({source}):* {CLAIMS[v.claim_id].statement if v.claim_id in CLAIMS else ''}",
            "",
            f"*Finding:* {v.statement}",
            "",
            f"- measured: `{json.dumps(jsonable(v.measured))}`",
            f"- error: `{json.dumps(jsonable(v.error))}`",
            f"- tolerance: {v.tolerance}",
            f"- region: `{json.dumps(jsonable(v.region))}`",
        ]
        if details:
            lines += ["", "<details><summary>details</summary>", "", "```json"]
            lines.append(json.dumps(jsonable(details), indent=1))
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
            spec = r.verdict.details.get("figure")
            if isinstance(spec, dict):
                path = _figure(r.verdict.claim_id, spec, out)
                if path is not None:
                    images[r.verdict.claim_id] = path.name
                    written.append(path)
    report = out / "report.md"
    atomic_write(report, report_markdown(results, mode, images).encode())
    verdicts = out / "verdicts.json"
    atomic_write(verdicts, json.dumps([record(r) for r in results], indent=1).encode())
    return [report, verdicts, *written]
