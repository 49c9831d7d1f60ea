"""Benchmarks as lists of problems, and the paper's prompt.

`load_dataset("math500")` reads `<data dir>/math500.jsonl` (likewise `aime2024`, `aime2025`);
`load_dataset("path/to/file.jsonl")` reads any JSONL file with one problem per line. A line is a
JSON object with the fields `problem` and `answer` (required) and `id`, `level`, `subject`,
`solution` (optional; other fields are ignored). The data directory is, in order: the `data_dir`
argument, the environment variable `DORA_DATA`, the copies shipped with the package
(`backends/data/`, package data, so the names work after a plain `pip install`). The problems are
the benchmarks' authors' (MATH: Hendrycks et al., MIT licence; AIME: © the MAA); their sources and
licences are noted in `backends/data/README.md`.

`SYSTEM_PROMPT` is the system prompt the paper ran (App. D.2 of the paper: HuggingFace
search-and-learn's `Config.system_prompt`); `build_messages` makes the chat [system, user] that a
policy's chat template turns into its prompt.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import random
import re
from collections.abc import Mapping

__all__ = [
    "BENCHMARKS",
    "DATA_ENV_VAR",
    "PACKAGED_DATA_DIR",
    "SYSTEM_PROMPT",
    "DatasetError",
    "Problem",
    "build_messages",
    "load_dataset",
    "resolve_data_dir",
]

BENCHMARKS = ("math500", "aime2024", "aime2025")
DATA_ENV_VAR = "DORA_DATA"
# The benchmarks shipped as package data (pyproject's [tool.setuptools.package-data]).
PACKAGED_DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"

SYSTEM_PROMPT = (
    "Solve the following math problem efficiently and clearly:\n"
    "\n"
    "- For simple problems (2 steps or fewer):\n"
    "Provide a concise solution with minimal explanation.\n"
    "\n"
    "- For complex problems (3 steps or more):\n"
    "Use this step-by-step format:\n"
    "\n"
    "## Step 1: [Concise description]\n"
    "[Brief explanation and calculations]\n"
    "\n"
    "## Step 2: [Concise description]\n"
    "[Brief explanation and calculations]\n"
    "\n"
    "...\n"
    "\n"
    "Regardless of the approach, always conclude with:\n"
    "\n"
    "Therefore, the final answer is: $\\boxed{answer}$. I hope it is correct.\n"
    "\n"
    "Where [answer] is just the final number or expression that solves the problem."
)
"""The system prompt of the paper's runs, verbatim (App. D.2 of the paper; the code's string,
which differs from the appendix's rendering only in "2 steps" and the closing sentence)."""

_LEVEL = re.compile(r"^\s*(?:level\s*)?(\d+)\s*$", re.IGNORECASE)


class DatasetError(ValueError):
    """A benchmark file that cannot be read as problems; the message is one line saying where."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """One benchmark problem.

    Attributes:
        id: unique within its dataset (the file's `id`, else `<dataset>-<0-based position>`).
        problem: the problem statement (LaTeX in Markdown).
        answer: the gold answer as written in the file (AIME: an integer as a string).
        level: difficulty 1–5 (MATH), else None.
        subject: MATH subject, else None.
        dataset: the benchmark's name (`math500`, …) or the file's stem for a custom file.
        solution: the reference solution where the file has one, else None.
    """

    id: str
    problem: str
    answer: str
    level: int | None
    subject: str | None
    dataset: str
    solution: str | None = None


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """The directory holding `<benchmark>.jsonl`: `data_dir`, else $DORA_DATA, else the copies
    shipped with the package (`PACKAGED_DATA_DIR`).

    Raises:
        DatasetError: the chosen directory does not exist (the message says how to point at one).
    """
    if data_dir is not None:
        candidate, origin = pathlib.Path(data_dir), "data_dir"
    elif os.environ.get(DATA_ENV_VAR):
        candidate, origin = pathlib.Path(os.environ[DATA_ENV_VAR]), f"${DATA_ENV_VAR}"
    else:
        candidate, origin = PACKAGED_DATA_DIR, "the package's data"
    if not candidate.is_dir():
        raise DatasetError(
            f"data directory not found: {candidate} (from {origin}); pass data_dir=... "
            f"or set {DATA_ENV_VAR}=/path/to/dir holding {', '.join(BENCHMARKS)} .jsonl files"
        )
    return candidate


def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    seed: int | None = None,
) -> list[Problem]:
    """Read a benchmark (`math500`, `aime2024`, `aime2025`) or any JSONL file of problems.

    Args:
        name_or_path: a benchmark name (read from the data directory, see `resolve_data_dir`) or a
            path to a `.jsonl` file.
        data_dir: where the benchmarks lie (default: $DORA_DATA, else the package's copies).
        limit: keep at most this many problems (all when None or when the file has fewer).
        seed: how to choose the `limit` problems: None keeps the first `limit` in file order; an int
            draws a uniform subset with `random.Random(seed).sample` (same seed, same subset on
            any machine; Python promises `sample`'s stream only within a version). The result is
            always in file order.

    Returns:
        The problems, in file order.

    Raises:
        DatasetError: unknown name, missing file, invalid JSON or missing field on some line, wrong
            field type, duplicate ids, or no problem at all.
        ValueError: `limit` < 1.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive integer or None, got {limit}")
    text = os.fspath(name_or_path)
    if text in BENCHMARKS:
        path, dataset = resolve_data_dir(data_dir) / f"{text}.jsonl", text
    elif text.endswith(".jsonl") or "/" in text or os.sep in text or os.path.isfile(text):
        path = pathlib.Path(text)
        dataset = path.stem
    else:
        raise DatasetError(
            f"unknown dataset {text!r}: expected one of {', '.join(BENCHMARKS)} "
            "or a path to a .jsonl file"
        )
    problems = _read_jsonl(path, dataset)
    if limit is None or limit >= len(problems):
        return problems
    if seed is None:
        return problems[:limit]
    chosen = sorted(random.Random(seed).sample(range(len(problems)), limit))
    return [problems[i] for i in chosen]


def build_messages(
    problem: Problem | str, *, system_prompt: str = SYSTEM_PROMPT
) -> list[dict[str, str]]:
    """The chat [system, user] for one problem, as the paper's runs built it (App. D.2).

    Args:
        problem: a `Problem` or a problem statement.
        system_prompt: the system message (default: the paper's `SYSTEM_PROMPT`).

    Returns:
        `[{"role": "system", ...}, {"role": "user", "content": <statement>}]`, for a tokenizer's
        `apply_chat_template` (the vLLM backend adds the generation prompt).
    """
    statement = problem.problem if isinstance(problem, Problem) else problem
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": statement},
    ]


def _read_jsonl(path: pathlib.Path, dataset: str) -> list[Problem]:
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}")
    problems: list[Problem] = []
    first_line_of: dict[str, int] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}: invalid JSON on line {number}: {error.msg}") from None
            problem = _problem(record, path, number, dataset, index=len(problems))
            if problem.id in first_line_of:
                raise DatasetError(
                    f"{path}: duplicate id {problem.id!r} on lines "
                    f"{first_line_of[problem.id]} and {number}"
                )
            first_line_of[problem.id] = number
            problems.append(problem)
    if not problems:
        raise DatasetError(f"{path}: empty dataset (no problem lines)")
    return problems


def _problem(
    record: object, path: pathlib.Path, number: int, dataset: str, *, index: int
) -> Problem:
    where = f"{path}: line {number}"
    if not isinstance(record, Mapping):
        raise DatasetError(f"{where} is not a JSON object")
    for field in ("problem", "answer"):
        if field not in record or record[field] is None:
            raise DatasetError(f"{where} lacks {field!r}")
    statement = record["problem"]
    if not isinstance(statement, str) or not statement.strip():
        raise DatasetError(f"{where}: 'problem' must be a non-empty string")
    answer = record["answer"]
    # AIME-style files may hold integer answers as JSON numbers (bool is an int, never an answer).
    if isinstance(answer, int) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str) or not answer.strip():
        raise DatasetError(f"{where}: 'answer' must be a non-empty string or an integer")
    raw_id = record.get("id")
    if raw_id is None:
        problem_id = f"{dataset}-{index:04d}"
    elif isinstance(raw_id, str | int) and not isinstance(raw_id, bool):
        problem_id = str(raw_id)
    else:
        raise DatasetError(f"{where}: 'id' must be a string or an integer")
    return Problem(
        id=problem_id,
        problem=statement,
        answer=answer.strip(),
        level=_level(record.get("level"), where),
        subject=_optional_str(record.get("subject"), "subject", where),
        dataset=dataset,
        solution=_optional_str(record.get("solution"), "solution", where),
    )


def _level(value: object, where: str) -> int | None:
    """MATH levels: 3 or "3" or "Level 3" (the original MATH files' form); absent → None."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (match := _LEVEL.match(value)):
        return int(match.group(1))
    raise DatasetError(f"{where}: 'level' must be an integer or 'Level N', got {value!r}")


def _optional_str(value: object, field: str, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise DatasetError(f"{where}: {field!r} must be a string")
