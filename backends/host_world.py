"""Any text `Backend` (backends.protocol) as the JAX engine's `World` (dora_jax.search).

The engine's state stays arrays: a slot is an int32 handle of a node in a host-side tree store
(plus its path's token count). The model is never called from inside a compiled function:
`dora_jax.search.search_batch` runs the round loop on the host and calls this world's
`expand_batch`, `score_batch` and `embed_batch` (the engine's `HostBatchWorld` protocol) BETWEEN
its compiled, pure steps, with every problem's slots at once ([P, N] handles as NumPy arrays). So
one search round makes one `Backend.generate` call, one `Backend.score` call and (for rules that
read embeddings) at most one `Backend.embed` call for every problem and candidate, and the store
may grow and raise freely (nothing is traced, cached or re-executed by JAX). Copies of one node
(the rule gave it B_i > 1 rollouts) become one request with n = B_i samples, and so do nodes of
one problem whose texts are equal (two paths that wrote the same steps): a prefix is asked once
per round. Only the slots the engine reads (`active`) are sent to the model.

Sampling seeds are common random numbers. A request's seed is a hash of the round's expand key
and the prefix's CONTENT (problem and steps), never of a node handle, and sample j of a request
is the j-th draw of its seed whatever n is (`backends.protocol.StepRequest`). The round keys come
from the problem's search key alone (`dora_jax.search.init_state` draws them before any rule
acts), and a prefix of d steps is always expanded in round d + 1, so every policy run with the
same problem key and T_max gets the same sample j of the same prefix: two policies that reach a
prefix share their first min(n, n') samples, and a sample bank (backends.bank) recorded under one
policy serves another wherever their trees meet.

Problems are the int32 indices of `HostWorld.problems`. Finished solutions are graded on the host
(math-verify via backends.grading); answers are interned per problem into int ids (equivalent
answers share an id, `grading.answer_key`) for the engine's votes. The store keeps every node
(texts, tokens, scores, grades), so a run's full search tree can be written out (`HostWorld.tree`).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from backends import grading
from backends.datasets import Problem
from backends.protocol import Backend, Prefix, StepRequest, StepSample
from dora_jax.base import Step


class HostSlots(NamedTuple):
    """N slots of one problem: node handles and the tokens generated on each path so far."""

    node: Int[Array, " N"]
    tokens: Int[Array, " N"]


@dataclasses.dataclass
class Node:
    """One partial (or finished) solution in the host store."""

    problem: int
    parent: int  # -1 for a root
    steps: tuple[str, ...]
    tokens: int  # policy tokens generated on the path (prompt excluded)
    step_tokens: int = 0
    finished: bool = False
    truncated: bool = False
    resampled: bool = False  # a replay reused a recorded sample for this draw (a bias risk)
    outcome: str | None = None  # grading.Outcome name, for finished nodes
    answer: int = -1  # the problem's interned answer id; -1 = none
    score: float | None = None  # last-step score, once scored

    @property
    def text(self) -> str:
        return "".join(self.steps)


def _seed(words: np.ndarray, prefix: Prefix) -> int:
    """A 31-bit sampling seed from a round key's two words and the prefix's content."""
    a, b = (int(x) for x in np.asarray(words, np.uint32).reshape(-1)[:2])
    text = json.dumps([a, b, prefix.problem, list(prefix.steps)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") >> 1


class HostWorld:
    """A `Backend` over a list of problems, behind the engine's `World` protocol.

    Args:
      backend: the model stack (vLLM, or any object with the protocol's methods).
      problems: the dataset problems; the engine's problem i is `problems[i]`.
      embed_dim: the embedder's dimension (default: the backend's `embed_dim` attribute, else
        one probe call to `backend.embed`).
      grade: `grading.grade`-like function (solution text, gold, truncated=) → Grade.
      answer_key: `grading.answer_key`-like function (solution text) → str | None.
    """

    def __init__(
        self,
        backend: Backend,
        problems: Sequence[Problem],
        *,
        embed_dim: int | None = None,
        grade: Callable[..., Any] = grading.grade,
        answer_key: Callable[[str], str | None] = grading.answer_key,
    ):
        if not problems:
            raise ValueError("HostWorld needs at least one problem")
        self.backend = backend
        self.problems = list(problems)
        self._embed_dim = embed_dim
        self._grade = grade
        self._answer_key = answer_key
        self.nodes: list[Node] = [Node(i, -1, (), 0) for i in range(len(self.problems))]
        self._answers: list[dict[str, int]] = [{} for _ in self.problems]
        self._grades: dict[tuple[int, str, bool], Any] = {}
        self._prompt = np.asarray(
            [backend.prompt_tokens(p.problem) for p in self.problems], np.int32
        )
        self.calls: collections.Counter[str] = collections.Counter()

    def reset(self) -> None:
        """Forgets every node but the roots (call between batches to bound memory; handles
        from before are invalid afterwards)."""
        del self.nodes[len(self.problems) :]
        self._answers = [{} for _ in self.problems]

    # --- the World protocol ------------------------------------------------------------

    def problem_ids(self) -> Int[Array, " P"]:
        return jnp.arange(len(self.problems), dtype=jnp.int32)

    def init(self, problem, num_slots: int) -> HostSlots:
        node = jnp.broadcast_to(jnp.asarray(problem, jnp.int32), (num_slots,))
        return HostSlots(node=node, tokens=jnp.zeros((num_slots,), jnp.int32))

    def path_tokens(self, slots: HostSlots):
        return slots.tokens

    def prompt_tokens(self, problem):
        return jnp.asarray(self._prompt)[jnp.asarray(problem, jnp.int32)]

    @property
    def embed_dim(self) -> int:
        if self._embed_dim is None:
            dim = getattr(self.backend, "embed_dim", None)
            self._embed_dim = int(dim) if dim else int(self.backend.embed(["probe"]).shape[1])
        return self._embed_dim

    # --- the engine's host calls (HostBatchWorld): [P, N] arrays, outside jit ------------

    def expand_batch(self, keys, problems, slots: HostSlots, final, active):
        """One generation call for every problem's active slots → (HostSlots, Step), [P, N]."""
        del problems  # a node handle knows its problem
        node, tokens, finished, correct, answer, step_tokens = self._expand_host(
            np.asarray(slots.node),
            np.asarray(slots.tokens),
            np.asarray(final),
            np.asarray(active),
            _key_words(keys),
        )
        step = Step(
            finished=finished, correct=correct, answer=answer, tokens=step_tokens, direction=node
        )
        return HostSlots(node=node, tokens=tokens), step

    def score_batch(self, keys, problems, slots: HostSlots, active):
        """One PRM call for every problem's active slots → Float32[P, N] (0 elsewhere)."""
        del keys, problems
        return self._score_host(np.asarray(slots.node), np.asarray(active))

    def embed_batch(self, keys, problems, slots: HostSlots, active):
        """At most one embedding call (none if nothing is active) → Float32[P, N, E]."""
        del keys, problems
        return self._embed_host(np.asarray(slots.node), np.asarray(active))

    # --- host side ---------------------------------------------------------------------

    def prefix(self, handle: int) -> Prefix:
        node = self.nodes[handle]
        return Prefix(self.problems[node.problem].problem, node.steps)

    def _grade_node(self, node: Node) -> bool:
        """Grades a finished node (outcome, answer id); returns whether it is correct."""
        gold = self.problems[node.problem].answer
        text = node.text
        key = self._answer_key(text)
        cache_key = (node.problem, key if key is not None else text, node.truncated)
        if key is None or cache_key not in self._grades:
            self._grades[cache_key] = self._grade(text, gold, truncated=node.truncated)
        grade = self._grades[cache_key]
        node.outcome = getattr(grade.outcome, "name", str(grade.outcome))
        if key is not None:
            node.answer = self._answers[node.problem].setdefault(
                key, len(self._answers[node.problem])
            )
        return bool(grade.correct)

    def _add(self, parent: int, sample: StepSample) -> int:
        up = self.nodes[parent]
        node = Node(
            problem=up.problem,
            parent=parent,
            steps=(*up.steps, sample.text),
            tokens=up.tokens + int(sample.tokens),
            step_tokens=int(sample.tokens),
            finished=bool(sample.finished),
            truncated=bool(sample.truncated),
            resampled=bool(getattr(sample, "resampled", False)),
        )
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _expand_host(self, node, tokens, final, active, key_words):
        """node, tokens, active: [P, N]; final: Bool[P]; key_words: UInt32[P, 2]."""
        rows = node.shape[0]
        final = np.broadcast_to(np.asarray(final).reshape(-1), (rows,))
        key_words = np.broadcast_to(np.asarray(key_words, np.uint32).reshape(-1, 2), (rows, 2))
        requests, where = [], []
        for r in range(rows):
            # One request per distinct prefix text of this problem (equal texts, one draw list).
            groups: dict[tuple[str, ...], list[int]] = {}
            for slot in np.flatnonzero(active[r]):
                handle = int(node[r, slot])
                if self.nodes[handle].finished:
                    raise RuntimeError(f"node {handle} is finished but was sent to generate")
                groups.setdefault(self.nodes[handle].steps, []).append(int(slot))
            for members in groups.values():
                prefix = self.prefix(int(node[r, members[0]]))
                requests.append(
                    StepRequest(
                        prefix,
                        n=len(members),
                        final=bool(final[r]),
                        seed=_seed(key_words[r], prefix),
                    )
                )
                where.append((r, members))
        new_node, new_tokens = node.astype(np.int32).copy(), tokens.astype(np.int32).copy()
        finished = np.zeros(node.shape, bool)
        correct = np.zeros(node.shape, bool)
        answer = np.full(node.shape, -1, np.int32)
        step_tokens = np.zeros(node.shape, np.int32)
        if requests:
            self.calls["generate"] += 1
            samples = self.backend.generate(requests)
            if len(samples) != len(requests):
                raise RuntimeError(
                    f"backend returned {len(samples)} results for {len(requests)} requests"
                )
            for (r, members), request, got in zip(where, requests, samples, strict=True):
                if len(got) != request.n:
                    raise RuntimeError(f"backend returned {len(got)} samples, asked {request.n}")
                for s, sample in zip(members, got, strict=True):
                    child = self._add(int(node[r, s]), sample)
                    c = self.nodes[child]
                    if request.final and not c.finished:
                        c.finished = True  # the last round ends every path
                    new_node[r, s], new_tokens[r, s] = child, c.tokens
                    step_tokens[r, s] = c.step_tokens
                    if c.finished:
                        finished[r, s] = True
                        correct[r, s] = self._grade_node(c)
                        answer[r, s] = c.answer
        return new_node, new_tokens, finished, correct, answer, step_tokens

    def _score_host(self, node, active):
        handles = sorted({int(h) for h in node[active]})
        out = np.zeros(node.shape, np.float32)
        if handles:
            self.calls["score"] += 1
            todo = [h for h in handles if self.nodes[h].score is None]
            if todo:
                scores = np.asarray(self.backend.score([self.prefix(h) for h in todo]))
                for h, value in zip(todo, scores, strict=True):
                    self.nodes[h].score = float(value)
            lookup = {h: self.nodes[h].score for h in handles}
            out[active] = [lookup[int(h)] for h in node[active]]
        return out

    def _embed_host(self, node, active):
        out = np.zeros((*node.shape, self.embed_dim), np.float32)
        handles = sorted({int(h) for h in node[active]})
        if handles:
            self.calls["embed"] += 1
            vectors = np.asarray(
                self.backend.embed([self.nodes[h].text for h in handles]), np.float32
            )
            index = {h: i for i, h in enumerate(handles)}
            out[active] = vectors[[index[int(h)] for h in node[active]]]
        return out

    # --- records -------------------------------------------------------------------------

    def tree(self, problem: int) -> list[dict[str, Any]]:
        """Every node of one problem's search (root first), as plain dicts."""
        out = []
        for handle, node in enumerate(self.nodes):
            if node.problem != problem:
                continue
            out.append(
                {
                    "node": handle,
                    "parent": node.parent,
                    "step": node.steps[-1] if node.steps else "",
                    "step_tokens": node.step_tokens,
                    "path_tokens": node.tokens,
                    "score": node.score,
                    "finished": node.finished,
                    "truncated": node.truncated,
                    "resampled": node.resampled,
                    "outcome": node.outcome,
                    "answer": node.answer,
                }
            )
        return out

    def resampled(self, problem: int) -> int:
        """How many of one problem's nodes hold a reused (resampled) sample, not their own draw."""
        return sum(n.resampled for n in self.nodes if n.problem == problem)

    def answers(self, problem: int) -> dict[int, str]:
        """The interned answer ids of one problem → their voting keys."""
        return {v: k for k, v in self._answers[problem].items()}


def _key_words(keys) -> np.ndarray:
    """UInt32[P, 2]: the first two words of each problem's round key (typed or raw)."""
    if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        keys = jax.random.key_data(keys)
    words = np.asarray(keys).astype(np.uint32)
    return words.reshape(*words.shape[:-1], -1)[..., :2]
