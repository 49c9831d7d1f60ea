"""`dora paper`'s work: run (or reuse) the searches, then set them beside the paper.

Three parts, each judged with `papers.compare` against the paper's numbers (`papers.data`):

- fig3: the five methods of Fig. 3 (p.7) × budgets N. On the synthetic backend every cell
  (policy model × dataset) of Fig. 3 runs in its OWN world, the one fitted to that cell's
  baseline curves (`papers.fit`, presets paper-<model>-<dataset>; DORA held out), so each cell's
  curves are compared with the paper's curves of the same cell. On a text backend (vllm, replay)
  the run covers the one cell its policy and dataset stand for (`HostCell`).
- fig4: the SAME records split by difficulty level (Fig. 4, p.9; MATH500 cells only). On a text
  backend the level is MATH500's own (the dataset's `level` field). On the synthetic backend a
  problem's difficulty is its p(root) ~ Beta(difficulty_a, difficulty_b)
  (`dora_jax.world.sample_problem`), and levels are modelled as difficulty strata: the P problems
  of each seed are ranked by p(root) and split, easiest first, into five groups in MATH500's
  level proportions 43 : 90 : 105 : 128 : 134 (level 1 = the highest p(root)). This sorts
  perfectly by difficulty, which MATH's human-assigned levels do not, so our levels are more
  separated than the paper's.
- table1: on the synthetic backend `papers.table1.table1` (REBASE@256 vs DORA@64 on the same
  problems, FLOPs from the ledger's counted tokens, latency under its stated model) in Table 1's
  cell's world; on a text backend the same two searches read from the fig3 run's records
  (`table1_from_records`: counted FLOPs, measured wall-clock seconds).

Reuse: each run's records live in a folder of `out` beside the settings that made them
(synthetic: `out/search/<cell>/settings.json`, written last; text backends: the bench's
`run.json`, `simulations.bench`). A rerun with the same settings reads them instead of
searching; a folder that holds other settings is refused (`SettingsMismatch`, one line) before
any work, so records of two settings never mix.

Pass rate (Fig. 3b, the share of all final rollouts that are correct): the synthetic runner's
records hold per-seed means and standard errors, so its interval is the normal one, mean ±
1.96·SE with SE = sqrt(Σ SE_s²)/S over seeds; a text backend's per-problem records give mean ±
1.96·sd/√P over problems (each problem's mean over seeds). The accuracy's interval is
`simulations.report`'s cluster bootstrap in both.
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

from backends.files import atomic_write, read_jsonl
from dora_jax.paper_worlds import PAPER_WORLDS
from papers import compare, data, fit

Z95 = 1.959963984540054
PARTS = ("fig3", "fig4", "table1")
# Table 1's cell (Llama-3.2-1B on MATH500).
MODEL, DATASET = compare.TABLE1_SETTING
# Every cell of Fig. 3, (model, dataset), MATH500 first.
CELLS: tuple[tuple[str, str], ...] = tuple(fit.cells())
# Table 1's pairing (REBASE's N, DORA's N); a module constant so that tests can shrink it.
TABLE1_BUDGETS = (256, 64)
DEFAULT_PROBLEMS = 100
DEFAULT_SEEDS = 1
LEVELS_HOW = (
    "levels are difficulty strata: each seed's problems ranked by p(root) and split, easiest "
    "first, in MATH500's proportions 43:90:105:128:134 (a perfect sort by difficulty; MATH's "
    "human-assigned levels are noisier, so ours are more separated)"
)
LEVELS_HOW_HOST = "levels are MATH500's own (each problem's `level` field)"


class SettingsMismatch(ValueError):
    """--out holds a run with other settings, or bad settings (one line)."""


def cell_name(cell: tuple[str, str]) -> str:
    """`llama-1b-math500` for ("llama-3.2-1b", "math500"): the preset's name without `paper-`."""
    return fit.preset_name(*cell).removeprefix("paper-")


def parse_cells(text: str) -> tuple[tuple[str, str], ...]:
    """Comma-separated cell names (`cell_name`) as cells, in Fig. 3's order; one-line
    SettingsMismatch on an unknown or repeated name."""
    names = {cell_name(c): c for c in CELLS}
    asked = [t.strip() for t in text.split(",") if t.strip()]
    if not asked:
        raise SettingsMismatch("--cells is empty; give e.g. llama-1b-math500")
    for name in asked:
        if name not in names:
            raise SettingsMismatch(f"unknown cell {name!r}; cells: {', '.join(names)}")
        if asked.count(name) > 1:
            raise SettingsMismatch(f"--cells repeats {name}; give each once")
    return tuple(c for c in CELLS if cell_name(c) in asked)


def world_of(cell: tuple[str, str]) -> str:
    """The cell's fitted world preset (`papers.fit`), or paper-like where it is absent."""
    name = fit.preset_name(*cell)
    return name if name in PAPER_WORLDS else "paper-like"


def world_note(cell: tuple[str, str]) -> str:
    world = world_of(cell)
    how = (
        "fitted to the paper's baseline curves of that cell (python -m papers.fit), DORA held out"
        if world != "paper-like"
        else "not fitted to the paper, so levels differ and shapes and orderings are what compare"
    )
    return f"the synthetic world {world!r} stands for {cell[0]} on {cell[1]}; it is {how}"


# How the paper's models are named in a policy's name or path (lower case).
POLICY_NAMES = {
    "llama-3.2-1b": "llama-3.2-1b",
    "llama-3.2-3b": "llama-3.2-3b",
    "qwen2.5-1.5b": "qwen2.5-1.5b",
}


def model_of_policy(policy: str) -> str | None:
    """The paper's model a policy (a hub id or a path) is, from its name; None if none is."""
    name = Path(policy).name.lower()
    found = [model for key, model in POLICY_NAMES.items() if key in name]
    return found[0] if len(found) == 1 else None


# The world of Table 1's cell (kept for the notes that name it).
WORLD = world_of((MODEL, DATASET))
WORLD_NOTE = world_note((MODEL, DATASET))


@dataclasses.dataclass(frozen=True)
class Settings:
    """What `dora paper` runs on the synthetic backend."""

    problems: int = DEFAULT_PROBLEMS
    seeds: int = DEFAULT_SEEDS
    budgets: tuple[int, ...] = data.BUDGETS
    max_rounds: int | None = None  # None: the engine's T_max
    cells: tuple[tuple[str, str], ...] = CELLS

    def search_spec(self, cell: tuple[str, str] = (MODEL, DATASET)):
        """The `simulations.spec.ExperimentSpec` of one cell's fig3/fig4 run (its own world)."""
        from dora_jax.search import MAX_ROUNDS
        from simulations import spec as spec_lib

        return spec_lib.build_spec(
            world=world_of(cell),
            methods=list(data.METHODS),
            budgets=list(self.budgets),
            problems=self.problems,
            seeds=self.seeds,
            max_rounds=self.max_rounds or MAX_ROUNDS,
            policy=cell[0],
        )

    def search_cells(self, parts: Sequence[str]) -> tuple[tuple[str, str], ...]:
        """The cells `parts` need: fig3 all of `cells`, fig4 their MATH500 ones."""
        if "fig3" in parts:
            return self.cells
        if "fig4" in parts:
            return tuple(c for c in self.cells if c[1] == "math500")
        return ()

    def table1_settings(self) -> dict[str, Any]:
        from dora_jax.search import MAX_ROUNDS
        from dora_jax.world import describe, preset

        rebase, dora = TABLE1_BUDGETS
        return {
            "world": WORLD,
            "world_config": _jsonable(describe(preset(WORLD))),
            # Table 1 runs one key over P × S problems (its searches are paired by construction).
            "problems": self.problems * self.seeds,
            "key": 0,
            "rebase_budget": rebase,
            "dora_budget": dora,
            "max_rounds": self.max_rounds or MAX_ROUNDS,
            "policy": MODEL,
        }


def _jsonable(value: Any) -> Any:
    """NaN/inf → None or "inf" (strict JSON), recursively."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# --- reuse ---------------------------------------------------------------------------------


def _folder_state(folder: Path, settings: dict[str, Any], name: str) -> bool:
    """True if `folder` holds a finished run of `settings`; False if it holds none; raises
    SettingsMismatch if it holds another run."""
    path = folder / "settings.json"
    if not path.exists():
        return False
    try:
        held = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise SettingsMismatch(
            f"{path} is unreadable; remove {folder} or give another --out"
        ) from None
    if held == settings:
        return True
    changed = sorted(k for k in set(held) | set(settings) if held.get(k) != settings.get(k))
    first = changed[0]
    raise SettingsMismatch(
        f"{folder} holds a {name} run with other settings ({first}: {held.get(first)} here, "
        f"{settings.get(first)} asked); give another --out or the same settings"
    )


def search_folder(out: Path, cell: tuple[str, str]) -> Path:
    return out / "search" / cell_name(cell)


def plan(parts: Sequence[str], settings: Settings, out: Path) -> dict[str, bool]:
    """Which runs are needed and whether each is already finished in `out` (checked, no work).

    Returns {"search/<cell>": reusable, …, "table1": reusable} for the runs `parts` need; raises
    SettingsMismatch (one line) when `out` holds a run of other settings, or a run of the older
    layout (one world for every cell, `out/search/settings.json`), which cannot be split by cell.
    """
    runs: dict[str, bool] = {}
    cells = settings.search_cells(parts)
    if "fig4" in parts and not any(c[1] == "math500" for c in cells):
        raise SettingsMismatch(
            "fig4 is MATH500 only; --cells names no math500 cell (e.g. llama-1b-math500)"
        )
    if cells and (out / "search" / "settings.json").exists():
        raise SettingsMismatch(
            f"{out / 'search'} holds a fig3/fig4 run of an older layout (one world for every "
            "cell); give another --out"
        )
    for cell in cells:
        runs[f"search/{cell_name(cell)}"] = _folder_state(
            search_folder(out, cell),
            _jsonable(settings.search_spec(cell).describe()),
            f"fig3/fig4 search of {cell_name(cell)}",
        )
    if "table1" in parts:
        runs["table1"] = _folder_state(out / "table1", settings.table1_settings(), "table1")
    return runs


# --- the fig3/fig4 search ------------------------------------------------------------------


def search_records(
    settings: Settings,
    out: Path,
    cell: tuple[str, str] = (MODEL, DATASET),
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], bool, float]:
    """(records, reused, seconds) of one cell's fig3/fig4 search in its own world, run or read
    from `out/search/<cell>`."""
    from simulations import report, runner

    spec = settings.search_spec(cell)
    described = _jsonable(spec.describe())
    folder = search_folder(out, cell)
    if _folder_state(folder, described, f"fig3/fig4 search of {cell_name(cell)}"):
        return read_jsonl(folder / "results.jsonl"), True, 0.0
    start = time.perf_counter()
    records = runner.run(spec, progress=progress)
    seconds = time.perf_counter() - start
    folder.mkdir(parents=True, exist_ok=True)
    runner.write_jsonl(folder / "results.jsonl", records)
    report.write(
        folder,
        report.summarize(records),
        records,
        title=f"{cell[0]}, {cell[1]}: world {spec.world_name}",
        plots=False,
        meta={"spec": described, "seconds": seconds},
    )
    atomic_write(folder / "settings.json", json.dumps(described, indent=1))
    return [runner.public_record(r) for r in records], False, seconds


def _pass_rate(records: Sequence[dict[str, Any]]) -> tuple[float, float, float]:
    """Pooled correct_fraction (percent) with its 95% interval (module docstring)."""
    if records and "problem" in records[0]:  # a text backend's per-problem records
        per_problem: dict[str, list[float]] = {}
        for r in records:
            per_problem.setdefault(r["problem"], []).append(float(r["correct_fraction"]))
        values = np.asarray([np.mean(v) for v in per_problem.values()], np.float64)
        mean = float(values.mean())
        sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        half = Z95 * sd / math.sqrt(len(values))
    else:
        means = np.asarray([r["correct_fraction"] for r in records], np.float64)
        ses = np.asarray([r["correct_fraction_se"] for r in records], np.float64)
        mean = float(means.mean())
        half = Z95 * float(np.sqrt(np.sum(ses**2))) / len(means)
    return 100 * mean, 100 * max(0.0, mean - half), 100 * min(1.0, mean + half)


def fig3_rows(
    records: Sequence[dict[str, Any]], cell: tuple[str, str] = (MODEL, DATASET)
) -> list[dict[str, Any]]:
    """`papers.compare` rows (percent) of one cell's search: accuracy from `simulations.report`
    (either grain: the runner's per-seed records or the bench's per-problem ones)."""
    from simulations import report

    out = []
    for row in report.summarize(records):
        mine = [r for r in records if (r["method"], r["budget"]) == (row["method"], row["budget"])]
        rate, rate_lo, rate_hi = _pass_rate(mine)
        low, high = row["accuracy_ci95"]
        accuracy = 100 * row["accuracy"]
        out.append(
            {
                "model": cell[0],
                "dataset": cell[1],
                "method": row["method"],
                "budget": row["budget"],
                "accuracy": accuracy,
                "lo": min(100 * low, accuracy),
                "hi": max(100 * high, accuracy),
                "pass_rate": rate,
                "pass_rate_lo": min(rate_lo, rate),
                "pass_rate_hi": max(rate_hi, rate),
                "seeds": row["seeds"],
                "problems": row["problems"],
            }
        )
    return out


def level_split(p_root: np.ndarray) -> np.ndarray:
    """Difficulty level 1..5 of each problem of one seed (module docstring: a rank split).

    Args:
      p_root: [P] the problems' p(root).
    Returns:
      [P] int levels; level ℓ holds the ℓ-th group of MATH500's proportions, easiest first.
    """
    import jax.numpy as jnp

    from dora_jax.apportion import apportion

    # Largest remainder (ties to the lower, easier level): exactly 43/90/105/128/134 at P = 500.
    counts = np.asarray(apportion(jnp.asarray(data.LEVEL_SIZES, jnp.float32), len(p_root)))
    order = np.argsort(-np.asarray(p_root, np.float64), kind="stable")
    levels = np.empty(len(p_root), np.int64)
    levels[order] = np.repeat(np.asarray(data.LEVELS), counts)
    return levels


def level_records(
    settings: Settings, records: Sequence[dict[str, Any]], cell: tuple[str, str] = (MODEL, DATASET)
) -> list[dict[str, Any]]:
    """One cell's synthetic outcomes one per (problem, method, N, seed) with the problem's level,
    at the per-problem grain `simulations.report.by_level` reads (problem id: "seed:index")."""
    from simulations import runner

    spec = settings.search_spec(cell)
    levels: dict[int, np.ndarray] = {}
    out = []
    for r in records:
        seed = r["seed"]
        if seed not in levels:
            # The runner's batch of this seed (padded to its device count, which the record keeps).
            count = runner.padded_count(spec.problems, int(r["versions"]["devices"]))
            problems, _ = runner.make_batch(spec, seed, count)
            levels[seed] = level_split(np.asarray(problems.p_root)[: spec.problems])
        bits = r["per_problem_accuracy"]
        for i, bit in enumerate(bits):
            out.append(
                {
                    "method": r["method"],
                    "budget": r["budget"],
                    "seed": seed,
                    "problem": f"{seed}:{i}",
                    "level": int(levels[seed][i]),
                    "accuracy": float(int(bit)),
                }
            )
    return out


def level_rows(leveled: Sequence[dict[str, Any]], model: str = MODEL) -> list[dict[str, Any]]:
    """`papers.compare` rows per level (percent) of one MATH500 cell, from
    `simulations.report.by_level` on per-problem records that carry a level."""
    from simulations import report

    out = []
    for row in report.by_level(leveled):
        low, high = row["accuracy_ci95"]
        accuracy = 100 * row["accuracy"]
        out.append(
            {
                "model": model,
                "dataset": "math500",
                "level": row["level"],
                "method": row["method"],
                "budget": row["budget"],
                "accuracy": accuracy,
                "lo": min(100 * low, accuracy),
                "hi": max(100 * high, accuracy),
                "n": row["n"],
            }
        )
    return out


def fig4_rows(
    settings: Settings, records: Sequence[dict[str, Any]], cell: tuple[str, str] = (MODEL, DATASET)
) -> list[dict[str, Any]]:
    """`papers.compare` rows per level (percent) of one synthetic MATH500 cell."""
    return level_rows(level_records(settings, records, cell), cell[0])


# --- table 1 -------------------------------------------------------------------------------


def table1_result(settings: Settings, out: Path) -> tuple[dict[str, Any], bool, float]:
    """(papers.table1 result, reused, seconds), run or read from `out/table1`."""
    import jax

    from papers import table1 as table1_lib

    wanted = settings.table1_settings()
    folder = out / "table1"
    if _folder_state(folder, wanted, "table1"):
        return json.loads((folder / "table1.json").read_text()), True, 0.0
    start = time.perf_counter()
    result = table1_lib.table1(
        jax.random.key(wanted["key"]),
        world=wanted["world"],
        problems=wanted["problems"],
        rebase_budget=wanted["rebase_budget"],
        dora_budget=wanted["dora_budget"],
        policy=wanted["policy"],
        max_rounds=wanted["max_rounds"],
    )
    seconds = time.perf_counter() - start
    result = _jsonable(result)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / "table1.json", json.dumps(result, indent=1))
    atomic_write(folder / "settings.json", json.dumps(wanted, indent=1))
    return result, False, seconds


# --- judging and writing -------------------------------------------------------------------


def verdicts_for(part: str, rows: Sequence[dict[str, Any]]) -> list[compare.Verdict]:
    """The verdicts of the findings about `part` (findings.csv's `data` column)."""
    about = {f.id for f in data.findings() if f.data == part}
    return [v for v in compare.verdicts(rows) if v.id in about]


def _mean_gap(diffs: Sequence[compare.Difference]) -> str:
    acc = [d.difference for d in diffs if d.metric == "accuracy"]
    if not acc:
        return "no cell in common with the paper"
    return f"mean ours − paper accuracy over {len(acc)} cells: {np.mean(acc):+.1f} points"


def write_part(
    part: str,
    rows: list[dict[str, Any]],
    out: Path,
    *,
    header: list[str],
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """Writes one part's figures and tables to `out/<part>/`; returns (JSON object, text)."""
    folder = out / part
    folder.mkdir(parents=True, exist_ok=True)
    if part == "table1":
        diffs: list[compare.Difference] = []
        figures: list[Path] = []
    else:
        diffs = compare.differences(rows)
        draw = compare.overlay if part == "fig3" else compare.overlay_levels
        figures = draw(rows, folder)
    found = verdicts_for(part, rows)
    text_diffs = compare.format_differences(diffs) if diffs else ""
    text_verdicts = compare.format_verdicts(found)
    body = [*header]
    if diffs:
        body += ["", "differences per cell (ours − the paper's):", text_diffs, _mean_gap(diffs)]
        atomic_write(folder / "differences.txt", text_diffs + "\n")
    body += ["", "verdicts on the paper's findings (judged on our runs):", text_verdicts]
    atomic_write(folder / "verdicts.txt", text_verdicts + "\n")
    obj: dict[str, Any] = {
        **(extra or {}),
        "rows": rows,
        "differences": [dataclasses.asdict(d) for d in diffs],
        "verdicts": [dataclasses.asdict(v) for v in found],
    }
    obj = _jsonable(obj)
    atomic_write(folder / f"{part}.json", json.dumps(obj, indent=1))
    tables = [folder / "differences.txt"] if diffs else []
    files = [*figures, *tables, folder / "verdicts.txt"]
    obj["files"] = [str(p) for p in [*files, folder / f"{part}.json"]]
    body.append("\nwrote " + ", ".join(obj["files"]))
    return obj, "\n".join(body)
