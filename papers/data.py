"""The paper's reported numbers (arXiv 2506.15707, NeurIPS 2025), loaded from papers/data/*.csv.

Fig. 3 (p.7): accuracy (3a) and pass rate (3b) for 3 policy models × MATH500/AIME2024/AIME2025 ×
5 methods × N ∈ {16, …, 256}; Fig. 4 (p.9): MATH500 accuracy by difficulty level; Table 1 (p.8):
FLOPs, latency and accuracy of Llama-3.2-1B on MATH500; and the paper's stated findings. The
figures' values were read from their vector graphics (precision in each row), Table 1's as printed;
papers/data/README.md gives the provenance.

Every loader checks its file (header, identifiers, numbers, each cell present exactly once) and
raises `PaperDataError` with one line naming the file and row.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import itertools
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"

MODELS: tuple[str, ...] = ("llama-3.2-1b", "llama-3.2-3b", "qwen2.5-1.5b")
DATASETS: tuple[str, ...] = ("math500", "aime2024", "aime2025")
METHODS: tuple[str, ...] = ("temperature_sampling", "beam_search", "dvts", "rebase", "dora")
BUDGETS: tuple[int, ...] = (16, 32, 64, 128, 256)
LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
METRICS: tuple[str, ...] = ("accuracy", "pass_rate")
# Problems per difficulty level in MATH500 (the 500-problem subset of Hendrycks et al. 2021).
LEVEL_SIZES: tuple[int, ...] = (43, 90, 105, 128, 134)
TABLE1_QUANTITIES: tuple[str, ...] = (
    "policy_flops",
    "prm_flops",
    "embedding_flops",
    "total_flops",
    "latency",
    "accuracy",
)
# The ratios §4.3 quotes, as printed in Table 1 (REBASE@256 over DORA@64).
PAPER_FLOPS_RATIO = 3.11e15 / 8.92e14
PAPER_LATENCY_RATIO = 490 / 124


class PaperDataError(ValueError):
    """A data file is missing or malformed (the message is one line)."""


@dataclasses.dataclass(frozen=True)
class FigureValue:
    """One value read from Fig. 3 or Fig. 4 (percent); `level` is None for Fig. 3."""

    figure: str
    metric: str
    model: str
    dataset: str
    level: int | None
    method: str
    budget: int
    value: float
    precision: float
    page: int
    provenance: str


@dataclasses.dataclass(frozen=True)
class TableValue:
    """One value printed in Table 1."""

    table: str
    model: str
    dataset: str
    method: str
    rollouts: int
    quantity: str
    value: float
    unit: str
    precision: float
    page: int
    provenance: str


@dataclasses.dataclass(frozen=True)
class Finding:
    """A finding the paper states, where it states it, and which data it is about."""

    id: str
    statement: str
    where: str
    data: str


class Grid(NamedTuple):
    """Values on a full grid: `values[i, j, …]` at `axes[0][1][i]`, `axes[1][1][j]`, …"""

    values: np.ndarray
    precision: np.ndarray
    axes: tuple[tuple[str, tuple], ...]


_FIG3_HEADER = [
    "figure",
    "metric",
    "model",
    "dataset",
    "method",
    "budget",
    "value",
    "precision",
    "page",
    "provenance",
]
_FIG4_HEADER = [
    "figure",
    "metric",
    "model",
    "dataset",
    "level",
    "method",
    "budget",
    "value",
    "precision",
    "page",
    "provenance",
]
_TABLE1_HEADER = [
    "table",
    "model",
    "dataset",
    "method",
    "rollouts",
    "quantity",
    "value",
    "unit",
    "precision",
    "page",
    "provenance",
]
_FINDINGS_HEADER = ["id", "statement", "where", "data"]


def _read(path: Path, header: list[str]) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise PaperDataError(f"{path}: no such file")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        got = next(reader, None)
        if got != header:
            raise PaperDataError(f"{path}: header {got} is not {header}")
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                raise PaperDataError(
                    f"{path} line {line}: {len(cells)} fields, expected {len(header)}"
                )
            rows.append((line, dict(zip(header, cells, strict=True))))
    if not rows:
        raise PaperDataError(f"{path}: no rows")
    return rows


class _Fields:
    """Typed, checked access to one CSV row (errors name the file and line)."""

    def __init__(self, path: Path, line: int, row: dict[str, str]):
        self.path, self.line, self.row = path, line, row

    def _fail(self, name: str, what: str) -> PaperDataError:
        return PaperDataError(f"{self.path} line {self.line}: {name} {self.row[name]!r} {what}")

    def text(self, name: str, allowed: tuple[str, ...] | None = None) -> str:
        value = self.row[name]
        if allowed is not None and value not in allowed:
            raise self._fail(name, f"is not one of {', '.join(allowed)}")
        return value

    def integer(self, name: str, allowed: tuple[int, ...] | None = None) -> int:
        try:
            value = int(self.row[name])
        except ValueError:
            raise self._fail(name, "is not int") from None
        if allowed is not None and value not in allowed:
            raise self._fail(name, f"is not one of {', '.join(map(str, allowed))}")
        return value

    def number(self, name: str) -> float:
        try:
            value = float(self.row[name])
        except ValueError:
            raise self._fail(name, "is not float") from None
        if not math.isfinite(value):
            raise self._fail(name, "is not finite")
        return value


def _check_complete(path: Path, keys: list[tuple], expected: set[tuple]) -> None:
    seen: set[tuple] = set()
    for key in keys:
        if key in seen:
            raise PaperDataError(f"{path}: {key} appears more than once")
        seen.add(key)
    missing = expected - seen
    if missing:
        raise PaperDataError(f"{path}: {len(missing)} cells missing, e.g. {min(missing)}")
    extra = seen - expected
    if extra:
        raise PaperDataError(f"{path}: unexpected cells, e.g. {min(extra)}")


def _figure_rows(path: Path, header: list[str], with_level: bool) -> list[FigureValue]:
    out = []
    for line, row in _read(path, header):
        get = _Fields(path, line, row)
        value = get.number("value")
        precision = get.number("precision")
        if not 0 <= value <= 100 or precision < 0:
            raise PaperDataError(
                f"{path} line {line}: value {value} not in [0, 100] or precision {precision} < 0"
            )
        out.append(
            FigureValue(
                figure=get.text("figure"),
                metric=get.text("metric", METRICS),
                model=get.text("model", MODELS),
                dataset=get.text("dataset", DATASETS),
                level=get.integer("level", LEVELS) if with_level else None,
                method=get.text("method", METHODS),
                budget=get.integer("budget", BUDGETS),
                value=value,
                precision=precision,
                page=get.integer("page"),
                provenance=get.text("provenance"),
            )
        )
    return out


@functools.cache
def _fig3(path: Path) -> tuple[FigureValue, ...]:
    rows = _figure_rows(path, _FIG3_HEADER, with_level=False)
    _check_complete(
        path,
        [(r.metric, r.model, r.dataset, r.method, r.budget) for r in rows],
        set(itertools.product(METRICS, MODELS, DATASETS, METHODS, BUDGETS)),
    )
    return tuple(rows)


@functools.cache
def _fig4(path: Path) -> tuple[FigureValue, ...]:
    rows = _figure_rows(path, _FIG4_HEADER, with_level=True)
    _check_complete(
        path,
        [(r.metric, r.model, r.dataset, r.level, r.method, r.budget) for r in rows],
        set(itertools.product(("accuracy",), MODELS, ("math500",), LEVELS, METHODS, BUDGETS)),
    )
    return tuple(rows)


def fig3(path: Path | str | None = None) -> list[FigureValue]:
    """Fig. 3 (p.7): 450 values, accuracy and pass rate (%) per model × dataset × method × N."""
    return list(_fig3(Path(path) if path else DATA_DIR / "fig3.csv"))


def fig4(path: Path | str | None = None) -> list[FigureValue]:
    """Fig. 4 (p.9): 375 values, MATH500 accuracy (%) per model × level × method × N."""
    return list(_fig4(Path(path) if path else DATA_DIR / "fig4.csv"))


def table1(path: Path | str | None = None) -> list[TableValue]:
    """Table 1 (p.8): per method (its rollouts) policy/PRM/embedding/total FLOPs, latency (s)
    and accuracy (%), Llama-3.2-1B-Instruct on MATH500."""
    path = Path(path) if path else DATA_DIR / "table1.csv"
    rows = []
    for line, row in _read(path, _TABLE1_HEADER):
        get = _Fields(path, line, row)
        rows.append(
            TableValue(
                table=get.text("table"),
                model=get.text("model", MODELS),
                dataset=get.text("dataset", DATASETS),
                method=get.text("method", METHODS),
                rollouts=get.integer("rollouts", BUDGETS),
                quantity=get.text("quantity", TABLE1_QUANTITIES),
                value=get.number("value"),
                unit=get.text("unit"),
                precision=get.number("precision"),
                page=get.integer("page"),
                provenance=get.text("provenance"),
            )
        )
    table_methods = ("beam_search", "dvts", "rebase", "dora")
    _check_complete(
        path,
        [(r.method, r.quantity) for r in rows],
        set(itertools.product(table_methods, TABLE1_QUANTITIES)),
    )
    return rows


def table1_dict(path: Path | str | None = None) -> dict[str, dict[str, float]]:
    """Table 1 as {method: {quantity: value, "rollouts": N}}."""
    out: dict[str, dict[str, float]] = {}
    for r in table1(path):
        out.setdefault(r.method, {"rollouts": float(r.rollouts)})[r.quantity] = r.value
    return out


def findings(path: Path | str | None = None) -> list[Finding]:
    """The paper's stated findings that `papers.compare.verdicts` judges."""
    path = Path(path) if path else DATA_DIR / "findings.csv"
    rows = []
    for line, row in _read(path, _FINDINGS_HEADER):
        if not row["id"].isidentifier() or not row["statement"]:
            raise PaperDataError(f"{path} line {line}: bad id {row['id']!r} or empty statement")
        if row["data"] not in ("fig3", "fig4", "table1"):
            raise PaperDataError(f"{path} line {line}: data {row['data']!r} is not fig3/4/table1")
        rows.append(Finding(**row))
    _check_complete(path, [(r.id,) for r in rows], {(r.id,) for r in rows})
    return rows


def _grid(rows, axes: tuple[tuple[str, tuple[Any, ...]], ...]) -> Grid:
    """Rows as arrays over `axes` ((field, ordered values), ...): each row's value and precision
    at the index of its fields."""
    values = np.empty(tuple(len(order) for _, order in axes))
    precision = np.empty_like(values)
    for r in rows:
        i = tuple(order.index(getattr(r, field)) for field, order in axes)
        values[i], precision[i] = r.value, r.precision
    return Grid(values, precision, axes)


def fig3_grid(metric: str = "accuracy") -> Grid:
    """Fig. 3 as arrays [model, dataset, method, N], in the order of MODELS, DATASETS, METHODS,
    BUDGETS."""
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    axes = (("model", MODELS), ("dataset", DATASETS), ("method", METHODS), ("budget", BUDGETS))
    return _grid([r for r in fig3() if r.metric == metric], axes)


def fig4_grid() -> Grid:
    """Fig. 4 as arrays [model, level, method, N] (order of MODELS, LEVELS, METHODS, BUDGETS)."""
    axes = (("model", MODELS), ("level", LEVELS), ("method", METHODS), ("budget", BUDGETS))
    return _grid(fig4(), axes)
