"""File primitives for every layer that writes results: atomic replace, fsync'ed JSONL append,
tolerant JSONL read.

Why here: the pure core (`dora_jax`) does no file I/O; effects — files, model calls, progress —
live in `backends/` and above (the layers import only downwards: dora_jax ← backends ← theory ←
simulations ← papers ← dora_cli), so every layer that writes results can import it. It imports
nothing but the standard library.

The three functions share one crash model: a reader never sees a half-written file
(`atomic_write`: a temporary file in the same folder, fsync'ed, then `os.replace`), and an append
is whole lines in one `write` followed by fsync (`append_jsonl`), so a kill tears at most the last
line, which `read_jsonl` drops (and cuts off on disk). A damaged line anywhere else is not a
crash's trace: it is reported as one `JsonlError` line naming the file and the line number.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["JsonlError", "append_jsonl", "atomic_write", "jsonl_text", "read_jsonl"]


class JsonlError(ValueError):
    """A damaged JSONL file (one line naming the file and the line)."""


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replaces `path` with `data` (text is UTF-8) so that readers see the old or the new file."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def jsonl_text(records: Iterable[dict[str, Any]]) -> str:
    """Records as JSONL: one JSON object a line, keys sorted, each line ended by a newline."""
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)


def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Appends the records as whole lines with one write, then fsyncs (nothing for no records)."""
    data = jsonl_text(records).encode()
    if not data:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path: Path, *, repair: bool = True) -> list[dict[str, Any]]:
    """The records of a JSONL file ([] if it does not exist); blank lines are skipped.

    A last line without its newline is the trace of a killed append: it is dropped, and with
    `repair` cut off on disk too, so the next append starts on a fresh line.

    Raises:
      JsonlError: a complete line that is not a JSON object.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    whole = data.rfind(b"\n") + 1
    if repair and whole < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(whole)
    records = []
    for number, line in enumerate(data[:whole].split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            # json says "Unterminated string starting at" and means the column given beside it.
            reason = error.msg.removesuffix(" starting at")
            raise JsonlError(
                f"{path}, line {number}: not valid JSON (column {error.colno}: {reason}); "
                "move the file away to start afresh"
            ) from None
        except UnicodeDecodeError:
            raise JsonlError(
                f"{path}, line {number}: not UTF-8 text; move the file away to start afresh"
            ) from None
        if not isinstance(record, dict):
            raise JsonlError(
                f"{path}, line {number}: a JSON {type(record).__name__}, not a record (an "
                "object); move the file away to start afresh"
            )
        records.append(record)
    return records


def first_difference(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """The first key (in `new`'s order, then `old`'s) whose value differs, or None."""
    for key in [*new, *(k for k in old if k not in new)]:
        if old.get(key) != new.get(key):
            return key
    return None
