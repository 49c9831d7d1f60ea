"""A run's fingerprint: the settings that define a run, kept as `run.json` in its `--out` folder.

`dora bench` resumes into its `--out` folder, so a rerun with other settings (another dataset,
`--limit`, budget list, …) must not add its records to the old ones: `check` compares the
stored fingerprint with the new one and names the FIRST setting that differs (in the order the
fingerprint lists them), and `replace` moves an old run's files into a numbered subfolder
(`replaced-1`, `replaced-2`, …) so that a fresh run starts from an empty folder without deleting
anything. `dora simulate` is not resumable (it rewrites all its files at the end); it uses the
same file to say which run a folder holds and to report when a rerun replaced another.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backends.files import atomic_write, first_difference

RUN_FILE = "run.json"
# What a run writes into its folder (the files `replace` moves away); plots are `*.png`.
RUN_OUTPUTS = (RUN_FILE, "results.jsonl", "trees.jsonl", "summary.json")
_SHOWN = 60  # characters of a setting's value in the one-line message


class RunFileError(ValueError):
    """A folder that holds another run, or an unreadable run.json (one line)."""


def normalized(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` as JSON gives them back (tuples → lists), so stored and new compare equal."""
    return json.loads(json.dumps(settings, sort_keys=False))


def read(out: Path) -> dict[str, Any] | None:
    """The fingerprint stored in `out`, or None when there is none."""
    path = out / RUN_FILE
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFileError(f"{path} is not readable JSON ({error}); use --fresh") from None
    if not isinstance(stored, dict):
        raise RunFileError(f"{path} is not a JSON object; use --fresh")
    return stored


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def describe_difference(out: Path, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """One line naming the first differing setting (None when the runs agree)."""
    key = first_difference(old, new)
    if key is None:
        return None
    return (
        f"--out {out} holds another run: {key} is {_shown(old.get(key))} there, "
        f"{_shown(new.get(key))} now"
    )


def check(out: Path, settings: dict[str, Any], *, has_results: bool) -> None:
    """Raises RunFileError when `out` holds a run with other settings (or of unknown settings).

    `has_results`: the folder already holds results (a folder with results but no run.json was
    written by an older version: its settings are unknown, so it is refused too).
    """
    stored = read(out)
    if stored is None:
        if has_results:
            raise RunFileError(
                f"--out {out} holds results without {RUN_FILE} (settings unknown); "
                "use another --out, or --fresh to move them aside"
            )
        return
    line = describe_difference(out, stored, normalized(settings))
    if line is not None:
        raise RunFileError(f"{line}; use another --out, or --fresh to move it aside")


def replace(out: Path) -> Path | None:
    """Moves the run files in `out` into `out/replaced-<k>` (first free k); returns that folder,
    or None when there was nothing to move."""
    if not out.is_dir():
        return None
    present = [out / n for n in RUN_OUTPUTS if (out / n).exists()] + sorted(out.glob("*.png"))
    if not present:
        return None
    k = 1
    while (out / f"replaced-{k}").exists():
        k += 1
    target = out / f"replaced-{k}"
    target.mkdir()
    for path in present:
        path.rename(target / path.name)
    return target


def write(out: Path, settings: dict[str, Any]) -> None:
    """Stores the fingerprint (atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / RUN_FILE, json.dumps(normalized(settings), indent=1) + "\n")
