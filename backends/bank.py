"""A sample bank: every generate / score / embed result of a text backend, kept in SQLite (WAL).

`RecordingBackend(backend, bank)` passes each call to `backend` and stores what came back;
`ReplayBackend(bank)` answers the same calls from the bank with no model at all. Replaying the
recorded policy with the recorded seeds therefore reproduces its records exactly (the host world
asks for the same prefixes with the same seeds, and gets the same samples, scores, embeddings).

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

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from backends.protocol import Backend, Prefix, StepRequest, StepSample

__all__ = ["BankError", "BankMiss", "RecordingBackend", "ReplayBackend", "SampleBank"]

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


class ReplayBackend:
    """Answers a text backend's calls from a bank, with no model: `hits` and `misses` count the
    requests served and not found (a miss raises `BankMiss`, naming the prefix)."""

    calls = 0  # backend (model) calls: none, ever

    def __init__(self, bank: SampleBank):
        self.bank = bank
        self.key, settings = bank.only_settings()
        self.embed_dim = settings.get("embed_dim")
        self.hits = self.misses = 0

    def _miss(self, what: str, problem: str, prefix: str = "") -> BankMiss:
        self.misses += 1
        where = f"problem {problem[:12]}" + (f", prefix {prefix[:12]}" if prefix else "")
        return BankMiss(f"the bank {self.bank.path} has no {what} for {where}")

    def generate(self, requests: Sequence[StepRequest]) -> list[list[StepSample]]:
        out = []
        for req in requests:
            problem, prefix = _prefix_key(req.prefix)
            rows = self.bank.db.execute(
                "SELECT j, text, tokens, finished, truncated FROM samples WHERE settings=? AND "
                "problem=? AND prefix=? AND final=? AND seed=? AND j<? ORDER BY j",
                (self.key, problem, prefix, int(req.final), req.seed, req.n),
            ).fetchall()
            if len(rows) < req.n:
                raise self._miss(f"{req.n} samples (seed {req.seed})", problem, prefix)
            self.hits += 1
            out.append([StepSample(t, int(k), bool(f), bool(c)) for _, t, k, f, c in rows])
        return out

    def score(self, prefixes: Sequence[Prefix]) -> np.ndarray:
        out = []
        for p in prefixes:
            problem, prefix = _prefix_key(p)
            row = self.bank.db.execute(
                "SELECT score FROM scores WHERE settings=? AND problem=? AND prefix=?",
                (self.key, problem, prefix),
            ).fetchone()
            if row is None:
                raise self._miss("score", problem, prefix)
            self.hits += 1
            out.append(row[0])
        return np.asarray(out, np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for t in texts:
            row = self.bank.db.execute(
                "SELECT vector FROM embeddings WHERE settings=? AND text=?", (self.key, _digest(t))
            ).fetchone()
            if row is None:
                raise self._miss("embedding", _digest(t))
            self.hits += 1
            out.append(np.frombuffer(row[0], np.float32))
        return np.stack(out)

    def prompt_tokens(self, problem: str) -> int:
        row = self.bank.db.execute(
            "SELECT tokens FROM prompts WHERE settings=? AND problem=?",
            (self.key, _digest(problem)),
        ).fetchone()
        if row is None:
            raise self._miss("prompt length", _digest(problem))
        return int(row[0])
