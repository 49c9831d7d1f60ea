"""What the search engine and the worlds share: one generation `Step` and the `World` protocol.

Below both `dora_jax.world` (the synthetic world) and `dora_jax.search` (the engine), so neither
imports the other for these. Shapes: N slots of ONE problem (vmap over problems at the edge).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

__all__ = ["HostBatchWorld", "PathWorld", "Step", "World"]


class Step(NamedTuple):
    """What one generation step produced; leading axis N.

    Attributes:
      finished: Bool[N] the step ended the solution (EOS, truncation, or the final round).
      correct: Bool[N] the finished solution is correct (False where not finished).
      answer: Int32[N] 0 = correct answer, 1..A wrong, -1 = no answer (truncated or unfinished)
        (a host world: the problem's interned answer id).
      tokens: Int32[N] tokens generated in this step (the whole completion in a final round).
      direction: Int32[N] an id of the node reached (for counting directions).
    """

    finished: Bool[Array, " N"]
    correct: Bool[Array, " N"]
    answer: Int[Array, " N"]
    tokens: Int[Array, " N"]
    direction: Int[Array, " N"]


class World(Protocol):
    """What the engine needs from where rollouts come from (synthetic world or a real LLM).

    All methods act on ONE problem's N slots (`slots` is any pytree with leading axis N) and are
    pure JAX functions the engine traces. A world whose model runs on the host (a real LLM)
    also offers the batched host methods of `HostBatchWorld`, which `dora_jax.search.search_batch`
    calls between its compiled steps.
    """

    def init(self, problem: Any, num_slots: int) -> Any:
        """N copies of the empty solution of `problem`."""
        ...

    def expand(
        self,
        key: PRNGKeyArray,
        problem: Any,
        slots: Any,
        final: Bool[Array, ""],
        active: Bool[Array, " N"] | None = None,
    ) -> tuple[Any, Step]:
        """Every slot generates one step → (new slots, step). `active` (None = all): the slots
        whose result the engine reads; a costly backend skips the others."""
        ...

    def score(
        self, key: PRNGKeyArray, problem: Any, slots: Any, active: Bool[Array, " N"] | None = None
    ) -> Float[Array, " N"]:
        """The PRM score of each slot's last step (only `active` ones are read)."""
        ...

    def embed(
        self, key: PRNGKeyArray, problem: Any, slots: Any, active: Bool[Array, " N"] | None = None
    ) -> Float[Array, "N E"]:
        """Unit embeddings of the slots' partial solutions (only `active` ones are read)."""
        ...

    def path_tokens(self, slots: Any) -> Int[Array, " N"]:
        """Policy tokens generated on each slot's path so far (prompt excluded)."""
        ...

    def prompt_tokens(self, problem: Any) -> Int[Array, ""] | int:
        """Tokens of the problem's prompt."""
        ...


@runtime_checkable
class HostBatchWorld(Protocol):
    """A world whose generation, scoring and embedding run on the host, batched over problems.

    `dora_jax.search.search_batch` calls these between its compiled, pure steps with NumPy
    arrays of every problem's slots ([P, N] leading axes): one call per round each, so a model
    server batches the whole round. `init`, `path_tokens` and `prompt_tokens` stay the pure,
    per-problem `World` methods.
    """

    def expand_batch(
        self, keys: Any, problems: Any, slots: Any, final: Any, active: Any
    ) -> tuple[Any, Step]:
        """keys [P] (per-problem round keys), final Bool[P], active Bool[P, N] →
        (slots, Step), leading axes [P, N]."""
        ...

    def score_batch(self, keys: Any, problems: Any, slots: Any, active: Any) -> Any:
        """Float32[P, N]; 0 where not active."""
        ...

    def embed_batch(self, keys: Any, problems: Any, slots: Any, active: Any) -> Any:
        """Float32[P, N, E]; 0 where not active."""
        ...


@runtime_checkable
class PathWorld(Protocol):
    """A pure `World` that can also step ONE slot on its own (no leading axis).

    For a rule that never reallocates (temperature sampling) a problem's N paths are independent,
    so `dora_jax.search.search_pool` runs them as separate lanes. Slot i of the path methods must
    be slot i of the batched ones, bit for bit: `init_path(problem)` is each of
    `init(problem, N)`'s identical copies, `expand_path(key, problem, slot, i, final)` is slot i
    of `expand(key, problem, slots, final)` (the same words of `key`), and likewise `score_path`
    for `score`.
    """

    def init_path(self, problem: Any) -> Any:
        """One copy of the empty solution of `problem` (a slot, no leading axis)."""
        ...

    def expand_path(
        self,
        key: PRNGKeyArray,
        problem: Any,
        slot: Any,
        index: Int[Array, ""],
        final: Bool[Array, ""],
    ) -> tuple[Any, Step]:
        """Slot `index`'s step of `expand(key, …)` → (new slot, Step without the leading axis)."""
        ...

    def score_path(
        self, key: PRNGKeyArray, problem: Any, slot: Any, index: Int[Array, ""]
    ) -> Float[Array, ""]:
        """Slot `index`'s score of `score(key, …)`."""
        ...
