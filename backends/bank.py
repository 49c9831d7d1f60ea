"""A sample bank: every generate / score / embed result of a text backend, kept in SQLite (WAL).

`RecordingBackend(backend, bank)` passes each call to `backend` and stores what came back;
`ReplayBackend(bank)` answers the same calls from the bank with no model at all. Replaying the
recorded policy with the recorded seeds therefore reproduces its records exactly (the host world
asks for the same prefixes with the same seeds, and gets the same samples, scores, embeddings).

Other policies are served too, wherever their trees meet the recorded ones: the host world's seed
of a prefix depends on the problem's search key and the prefix's text only, and sample j of a
request is the j-th draw of its seed (backends.host_world), so any policy asking a recorded
prefix for n samples gets the recorded draws 0..n-1. What the bank lacks (a prefix never
expanded, more draws, an embedding a policy without embeddings never asked for) is a miss, and
`on_miss` says what happens: `error` (one line naming the prefix), `fallthrough` (the live backend
answers and the bank records it) or `resample` (recorded samples of the prefix stand in for the
missing draws, flagged: a bias risk).

Schema (one database file; every key is a SHA-256 hex digest of the text it names):

    settings(id TEXT PRIMARY KEY, json TEXT)              -- what defines the samples: backend,
                                                          -- model, sampling settings; embed_dim
    samples(settings, problem, prefix, final, seed, j,    -- sample j of a generate request
            text, tokens, finished, truncated,
            PRIMARY KEY(settings, problem, prefix, final, seed, j))
    scores(settings, problem, prefix, score, PRIMARY KEY(settings, problem, prefix))
    embeddings(settings, text, vector BLOB float32, PRIMARY KEY(settings, text))
    prompts(settings, problem, tokens, PRIMARY KEY(settings, problem))

`problem` hashes the problem statement, `prefix` the steps so far (JSON list), `text` the
embedded text. Each backend call's rows are written in ONE transaction (`INSERT OR IGNORE`), so a
kill at any point loses at most the call in flight and never leaves half a call; WAL keeps readers
and the writer apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backends.files import first_difference
from backends.protocol import Backend, Prefix, StepRequest, StepSample

__all__ = [
    "ON_MISS",
    "BankError",
    "BankMiss",
    "RecordingBackend",
    "ReplayBackend",
    "SampleBank",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings(id TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples(
    settings TEXT NOT NULL, problem TEXT NOT NULL, prefix TEXT NOT NULL, final INTEGER NOT NULL,
    seed INTEGER NOT NULL, j INTEGER NOT NULL, text TEXT NOT NULL, tokens INTEGER NOT NULL,
    finished INTEGER NOT NULL, truncated INTEGER NOT NULL,
    PRIMARY KEY(settings, problem, prefix, final, seed, j));
CREATE TABLE IF NOT EXISTS scores(
    settings TEXT NOT NULL, problem TEXT NOT NULL, prefix TEXT NOT NULL, score REAL NOT NULL,
    PRIMARY KEY(settings, problem, prefix));
CREATE TABLE IF NOT EXISTS embeddings(
    settings TEXT NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY(settings, text));
CREATE TABLE IF NOT EXISTS prompts(
    settings TEXT NOT NULL, problem TEXT NOT NULL, tokens INTEGER NOT NULL,
    PRIMARY KEY(settings, problem));
"""
TABLES = ("samples", "scores", "embeddings", "prompts")


class BankError(ValueError):
    """A bank that cannot be used (one line)."""


class BankMiss(LookupError):
    """A request the bank cannot answer (one line naming the problem and prefix)."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _prefix_key(prefix: Prefix) -> tuple[str, str]:
    return _digest(prefix.problem), _digest(json.dumps(list(prefix.steps)))


class SampleBank:
    """The SQLite file: open (created with its schema when absent) in WAL mode."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise BankError(f"{self.path} is not a usable sample bank ({error})") from None

    def register(self, settings: dict[str, Any]) -> str:
        """The id of `settings` (stored once)."""
        text = json.dumps(settings, sort_keys=True)
        key = _digest(text)
        self.db.execute("INSERT OR IGNORE INTO settings VALUES (?, ?)", (key, text))
        return key

    def only_settings(self) -> tuple[str, dict[str, Any]]:
        """The bank's one settings record (a replay needs exactly one)."""
        rows = self.db.execute("SELECT id, json FROM settings").fetchall()
        if len(rows) != 1:
            raise BankError(f"{self.path} holds {len(rows)} recorded settings; replay needs one")
        return rows[0][0], json.loads(rows[0][1])

    def counts(self) -> dict[str, int]:
        """Rows per table (a kill-and-resume check compares these)."""
        return {t: self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}

    def write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """All `rows` in one transaction."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(sql, rows)

    def close(self) -> None:
        self.db.close()


class RecordingBackend:
    """`backend` with every result stored in `bank` under `settings` (what defines the samples)."""

    def __init__(self, backend: Backend, bank: SampleBank, settings: dict[str, Any]):
        self.backend, self.bank = backend, bank
        self.embed_dim = int(getattr(backend, "embed_dim", 0)) or None
        self.key = bank.register({**settings, "embed_dim": self.embed_dim})
        self.calls = 0

    def generate(self, requests: Sequence[StepRequest]) -> list[list[StepSample]]:
        self.calls += 1
        out = self.backend.generate(requests)
        rows = []
        for req, samples in zip(requests, out, strict=True):
            problem, prefix = _prefix_key(req.prefix)
            for j, s in enumerate(samples):
                rows.append(
                    (self.key, problem, prefix, int(req.final), req.seed, j, s.text, s.tokens,
                     int(s.finished), int(s.truncated))
                )  # fmt: skip
        self.bank.write("INSERT OR IGNORE INTO samples VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        return out

    def score(self, prefixes: Sequence[Prefix]) -> np.ndarray:
        self.calls += 1
        scores = np.asarray(self.backend.score(prefixes))
        rows = [
            (self.key, *_prefix_key(p), float(x)) for p, x in zip(prefixes, scores, strict=True)
        ]
        self.bank.write("INSERT OR IGNORE INTO scores VALUES (?,?,?,?)", rows)
        return scores

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        vectors = np.asarray(self.backend.embed(texts), np.float32)
        rows = [(self.key, _digest(t), v.tobytes()) for t, v in zip(texts, vectors, strict=True)]
        self.bank.write("INSERT OR IGNORE INTO embeddings VALUES (?,?,?)", rows)
        return vectors

    def prompt_tokens(self, problem: str) -> int:
        tokens = int(self.backend.prompt_tokens(problem))
        self.bank.write(
            "INSERT OR IGNORE INTO prompts VALUES (?,?,?)", [(self.key, _digest(problem), tokens)]
        )
        return tokens


ON_MISS = ("error", "fallthrough", "resample")


class ReplayBackend:
    """Answers a text backend's calls from a bank. A request is a hit when the bank holds all it
    asks (every asked draw of a generate request, a score, an embedding); `hits` and `misses`
    count requests, `calls` the live backend's calls (none unless `fallthrough` needed one).

    On a miss, `on_miss` decides:
      error: raise `BankMiss`, one line naming the problem and prefix (hashes).
      fallthrough: ask `live` (ONE call for all of a call's missing requests) and record its
        answers into the bank; the draws the bank holds are kept. `live_settings` must be the
        settings the bank was recorded with (else `BankError`, naming the first that differs).
      resample: serve a generate request's missing draws by reusing the samples recorded at the
        same prefix (its own seed's first, then other seeds', cycled); each such sample carries
        `resampled=True` and `resampled` counts them: they are not independent draws, a bias risk.
        A prefix with nothing recorded, or a missing score or embedding, still raises BankMiss.
    """

    def __init__(
        self,
        bank: SampleBank,
        *,
        on_miss: str = "error",
        live: Backend | None = None,
        live_settings: dict[str, Any] | None = None,
    ):
        if on_miss not in ON_MISS:
            raise BankError(f"on_miss must be one of {', '.join(ON_MISS)}, got {on_miss!r}")
        self.bank, self.on_miss = bank, on_miss
        self.key, settings = bank.only_settings()
        self.embed_dim = settings.get("embed_dim")
        self.hits = self.misses = self.resampled = 0
        self.recorder: RecordingBackend | None = None
        if on_miss == "fallthrough":
            if live is None or live_settings is None:
                raise BankError("--on-miss fallthrough needs the live backend the bank came from")
            mine = {**live_settings, "embed_dim": int(getattr(live, "embed_dim", 0)) or None}
            mine = json.loads(json.dumps(mine, sort_keys=True))
            if mine != settings:
                key = first_difference(settings, mine)
                raise BankError(
                    f"the live backend's {key} is {mine.get(key)!r}, the bank's "
                    f"{settings.get(key)!r}: fallthrough would mix two sample sources"
                )
            self.recorder = RecordingBackend(live, bank, live_settings)

    @property
    def calls(self) -> int:
        """Live backend calls (0 unless a fallthrough needed the model)."""
        return self.recorder.calls if self.recorder is not None else 0

    def _miss(self, what: str, problem: str, prefix: str = "", *, name="problem") -> BankMiss:
        where = f"{name} {problem[:12]}" + (f", prefix {prefix[:12]}" if prefix else "")
        return BankMiss(f"the bank {self.bank.path} has no {what} for {where}")

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[StepSample]:
        rows = self.bank.db.execute(sql, args).fetchall()
        return [StepSample(t, int(k), bool(f), bool(c)) for t, k, f, c in rows]

    def _draws(self, req: StepRequest, problem: str, prefix: str) -> dict[int, StepSample]:
        rows = self.bank.db.execute(
            "SELECT j, text, tokens, finished, truncated FROM samples WHERE settings=? AND "
            "problem=? AND prefix=? AND final=? AND seed=? AND j<?",
            (self.key, problem, prefix, int(req.final), req.seed, req.n),
        ).fetchall()
        return {int(j): StepSample(t, int(k), bool(f), bool(c)) for j, t, k, f, c in rows}

    def _resample(self, req: StepRequest, problem: str, prefix: str, have) -> list[StepSample]:
        pool = self._rows(
            "SELECT text, tokens, finished, truncated FROM samples WHERE settings=? AND "
            "problem=? AND prefix=? AND final=? ORDER BY seed != ?, seed, j",
            (self.key, problem, prefix, int(req.final), req.seed),
        )
        if not pool:
            raise self._miss("sample to resample", problem, prefix)
        out = []
        for j in range(req.n):
            if j in have:
                out.append(have[j])
            else:
                self.resampled += 1
                out.append(dataclasses.replace(pool[j % len(pool)], resampled=True))
        return out

    def generate(self, requests: Sequence[StepRequest]) -> list[list[StepSample]]:
        out: list[list[StepSample]] = [[] for _ in requests]
        missing: list[tuple[int, dict[int, StepSample]]] = []
        for i, req in enumerate(requests):
            problem, prefix = _prefix_key(req.prefix)
            have = self._draws(req, problem, prefix)
            if len(have) == req.n:
                self.hits += 1
                out[i] = [have[j] for j in range(req.n)]
                continue
            self.misses += 1
            if self.on_miss == "error":
                raise self._miss(f"{req.n} samples (seed {req.seed})", problem, prefix)
            if self.on_miss == "resample":
                out[i] = self._resample(req, problem, prefix, have)
            else:
                missing.append((i, have))
        if missing:
            assert self.recorder is not None
            fresh = self.recorder.generate([requests[i] for i, _ in missing])
            for (i, have), got in zip(missing, fresh, strict=True):
                out[i] = [have.get(j, sample) for j, sample in enumerate(got)]
        return out

    def _lookup(self, what: str, items: Sequence[Any], find, call) -> list[Any]:
        """Bank rows for `items` (`find(item)` → value or None); misses per `on_miss`, the
        fallthrough's in one `call(missing items)`."""
        out, missing = [], []
        for i, item in enumerate(items):
            value, names = find(item)
            if value is None:
                self.misses += 1
                if self.on_miss != "fallthrough":
                    raise self._miss(what, *names[1:], name=names[0])
                missing.append(i)
            else:
                self.hits += 1
            out.append(value)
        if missing:
            for i, value in zip(missing, call([items[i] for i in missing]), strict=True):
                out[i] = value
        return out

    def score(self, prefixes: Sequence[Prefix]) -> np.ndarray:
        def find(p: Prefix):
            problem, prefix = _prefix_key(p)
            row = self.bank.db.execute(
                "SELECT score FROM scores WHERE settings=? AND problem=? AND prefix=?",
                (self.key, problem, prefix),
            ).fetchone()
            return (None if row is None else row[0]), ("problem", problem, prefix)

        call = lambda ps: list(self._live().score(ps))  # noqa: E731
        return np.asarray(self._lookup("score", prefixes, find, call), np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        def find(t: str):
            row = self.bank.db.execute(
                "SELECT vector FROM embeddings WHERE settings=? AND text=?", (self.key, _digest(t))
            ).fetchone()
            vector = None if row is None else np.frombuffer(row[0], np.float32)
            return vector, ("text", _digest(t))

        call = lambda ts: list(self._live().embed(ts))  # noqa: E731
        return np.stack(self._lookup("embedding", texts, find, call)).astype(np.float32)

    def prompt_tokens(self, problem: str) -> int:
        row = self.bank.db.execute(
            "SELECT tokens FROM prompts WHERE settings=? AND problem=?",
            (self.key, _digest(problem)),
        ).fetchone()
        if row is not None:
            return int(row[0])
        if self.on_miss != "fallthrough":
            raise self._miss("prompt length", _digest(problem))
        return self._live().prompt_tokens(problem)

    def _live(self) -> RecordingBackend:
        assert self.recorder is not None  # fallthrough only
        return self.recorder
