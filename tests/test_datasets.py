"""Loading benchmarks and custom JSONL files, every bad input, selection, and the paper's prompt."""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
import tomllib

import pytest

from backends import datasets
from backends.datasets import (
    SYSTEM_PROMPT,
    DatasetError,
    Problem,
    build_messages,
    load_dataset,
    resolve_data_dir,
)

# SHA-256 of the paper's system prompt (App. D.2), checked verbatim against the paper's code's
# string when this was pinned: any edit to SYSTEM_PROMPT changes it.
_PROMPT_SHA256 = "fba6765edf2162ae50990853a7f310103b685c72d9b4434cccec28371f005dae"


def test_public_api_is_pinned():
    assert datasets.__all__ == [
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
    assert datasets.BENCHMARKS == ("math500", "aime2024", "aime2025")
    assert issubclass(DatasetError, ValueError)


def _write(path: pathlib.Path, lines: list[object | str]) -> pathlib.Path:
    """One line per item: strings verbatim, anything else as JSON."""
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), "utf-8"
    )
    return path


# --- the three benchmarks ----------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir():
    return resolve_data_dir(datasets.PACKAGED_DATA_DIR)


def test_the_benchmarks_ship_with_the_package(monkeypatch):
    """Without $DORA_DATA the names resolve to the package's copies, which pyproject ships."""
    monkeypatch.delenv(datasets.DATA_ENV_VAR, raising=False)
    assert resolve_data_dir() == datasets.PACKAGED_DATA_DIR
    assert datasets.PACKAGED_DATA_DIR.parent == pathlib.Path(datasets.__file__).resolve().parent
    assert len(load_dataset("aime2025")) == 30
    shipped = {p.name for p in datasets.PACKAGED_DATA_DIR.iterdir()}
    assert shipped == {f"{name}.jsonl" for name in datasets.BENCHMARKS} | {"README.md"}
    pyproject = tomllib.loads(
        (pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    )
    globs = pyproject["tool"]["setuptools"]["package-data"]["backends"]
    assert {"data/*.jsonl", "data/README.md"} <= set(globs)


@pytest.mark.parametrize(("name", "count"), [("math500", 500), ("aime2024", 30), ("aime2025", 30)])
def test_benchmarks_load(data_dir, name, count):
    problems = load_dataset(name, data_dir=data_dir)
    assert len(problems) == count
    assert len({p.id for p in problems}) == count
    assert all(isinstance(p, Problem) and p.dataset == name for p in problems)
    assert all(p.problem.strip() and p.answer.strip() for p in problems)
    if name == "math500":
        assert {p.level for p in problems} == {1, 2, 3, 4, 5}
        # the per-level sizes the paper's evaluation uses (the paper's §4.1)
        assert [sum(p.level == k for p in problems) for k in range(1, 6)] == [43, 90, 105, 128, 134]
        assert all(p.subject and p.solution for p in problems)
    else:
        assert all(p.level is None and p.subject is None for p in problems)
        assert all(re.fullmatch(r"\d{1,3}", p.answer) for p in problems)  # AIME: 0-999


def test_problem_is_frozen(data_dir):
    problem = load_dataset("aime2025", data_dir=data_dir, limit=1)[0]
    assert problem.id == "aime2025-00" and problem.answer == "70" and problem.solution is None
    with pytest.raises(AttributeError):
        problem.answer = "71"  # type: ignore[misc]


def test_data_dir_from_environment(tmp_path, monkeypatch):
    _write(tmp_path / "math500.jsonl", [{"problem": "1+1?", "answer": "2"}])
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert load_dataset("math500")[0] == Problem("math500-0000", "1+1?", "2", None, None, "math500")
    # an explicit argument wins over the environment
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_data_dir(other) == other


def test_missing_data_dir_says_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(DatasetError, match=r"data directory not found: .*DORA_DATA.*data_dir="):
        load_dataset("aime2024")
    with pytest.raises(DatasetError, match=r"data directory not found: .*from data_dir"):
        load_dataset("aime2024", data_dir=tmp_path / "nope")


# --- custom files ------------------------------------------------------------------------


def test_custom_jsonl(tmp_path):
    path = _write(
        tmp_path / "mine.jsonl",
        [
            {"id": "a", "problem": "P1", "answer": "\\frac12", "level": 3, "subject": "Algebra"},
            "",
            {"problem": "P2", "answer": 33, "level": "Level 5", "extra": [1, 2]},
            {"id": 7, "problem": "P3", "answer": " 7 ", "solution": "\\boxed{7}"},
        ],
    )
    problems = load_dataset(path)
    assert problems == [
        Problem("a", "P1", "\\frac12", 3, "Algebra", "mine"),
        Problem("mine-0001", "P2", "33", 5, None, "mine"),
        Problem("7", "P3", "7", None, None, "mine", solution="\\boxed{7}"),
    ]
    assert load_dataset(str(path)) == problems


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(
            [{"problem": "P", "answer": "1"}, "{not json"], r"invalid JSON on line 2", id="json"
        ),
        pytest.param(
            [{"problem": "P", "answer": "1"}, {"problem": "Q"}],
            r"line 2 lacks 'answer'",
            id="answer",
        ),
        pytest.param([{"answer": "1"}], r"line 1 lacks 'problem'", id="problem"),
        pytest.param(
            [{"problem": "P", "answer": None}], r"line 1 lacks 'answer'", id="null-answer"
        ),
        pytest.param([[1, 2]], r"line 1 is not a JSON object", id="not-object"),
        pytest.param(
            [{"problem": "P", "answer": ""}], r"line 1: 'answer' must be", id="empty-answer"
        ),
        pytest.param(
            [{"problem": "P", "answer": 1.5}], r"line 1: 'answer' must be", id="float-answer"
        ),
        pytest.param(
            [{"problem": "P", "answer": True}], r"line 1: 'answer' must be", id="bool-answer"
        ),
        pytest.param(
            [{"problem": 3, "answer": "1"}], r"line 1: 'problem' must be", id="problem-type"
        ),
        pytest.param(
            [{"problem": "P", "answer": "1", "level": "hard"}], r"'level' must be", id="level"
        ),
        pytest.param([{"problem": "P", "answer": "1", "id": [1]}], r"'id' must be", id="id-type"),
        pytest.param(
            [{"problem": "P", "answer": "1", "subject": 3}], r"'subject' must be", id="subject"
        ),
        pytest.param([], r"empty dataset", id="empty"),
        pytest.param(["", "  "], r"empty dataset", id="blank-lines-only"),
        pytest.param(
            [
                {"id": "x", "problem": "P", "answer": "1"},
                {"id": "x", "problem": "Q", "answer": "2"},
            ],
            r"duplicate id 'x' on lines 1 and 2",
            id="duplicate-id",
        ),
        pytest.param(
            [{"id": "t-0001", "problem": "P", "answer": "1"}, {"problem": "Q", "answer": "2"}],
            r"duplicate id 't-0001'",
            id="duplicate-with-default-id",
        ),
    ],
)
def test_bad_input(tmp_path, lines, message):
    path = _write(tmp_path / "t.jsonl", lines)
    with pytest.raises(DatasetError, match=message) as caught:
        load_dataset(path)
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset file not found: .*absent\.jsonl"):
        load_dataset(tmp_path / "absent.jsonl")
    with pytest.raises(DatasetError, match=r"unknown dataset 'gsm8k': expected one of math500"):
        load_dataset("gsm8k")


# --- selection ---------------------------------------------------------------------------


@pytest.fixture
def twenty(tmp_path):
    return _write(
        tmp_path / "twenty.jsonl", [{"problem": f"P{i}", "answer": str(i)} for i in range(20)]
    )


def test_limit_keeps_the_first(twenty):
    assert [p.answer for p in load_dataset(twenty, limit=3)] == ["0", "1", "2"]
    assert len(load_dataset(twenty, limit=100)) == 20
    for bad in (0, -1):
        with pytest.raises(ValueError, match="limit must be a positive integer"):
            load_dataset(twenty, limit=bad)


def test_seeded_selection_is_a_deterministic_subset_in_file_order(twenty):
    chosen = load_dataset(twenty, limit=5, seed=0)
    answers = [int(p.answer) for p in chosen]
    assert answers == sorted(answers) and len(set(answers)) == 5
    assert load_dataset(twenty, limit=5, seed=0) == chosen
    assert [load_dataset(twenty, limit=5, seed=s) for s in (1, 2)] != [chosen, chosen]


# --- the prompt --------------------------------------------------------------------------


def test_system_prompt_is_the_papers():
    assert SYSTEM_PROMPT.startswith("Solve the following math problem efficiently and clearly:\n\n")
    assert "(2 steps or fewer)" in SYSTEM_PROMPT and "(3 steps or more)" in SYSTEM_PROMPT
    assert (
        "Therefore, the final answer is: $\\boxed{answer}$. I hope it is correct." in SYSTEM_PROMPT
    )
    assert SYSTEM_PROMPT.endswith("the final number or expression that solves the problem.")
    assert hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest() == _PROMPT_SHA256


def test_build_messages():
    problem = Problem("a", "What is $1+1$?", "2", None, None, "mine")
    assert build_messages(problem) == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "What is $1+1$?"},
    ]
    assert build_messages("Q", system_prompt="S") == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q"},
    ]
