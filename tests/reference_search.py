"""A slow, obvious Python reference of the search engine (Algorithm 1) for ONE problem.

Written from the paper's Algorithm 1 (§2.1) and the contract in `dora_jax.search`'s docstring, not
from its array code: the slots are a Python list of per-slot records, the finished solutions a
Python list appended to in slot order, the stop rules are spelled out, the allocation goes through
the public `dora_jax.allocate`, re-slotting builds the list "survivor j repeated B_j times, in index
order", and the votes are Counter/dict sums. It drives the SAME synthetic-world functions as the
engine (`dora_jax.world.expand/score/embed`, jitted one call at a time) with the SAME per-round keys
(`jax.random.split(key, (T_max, 4))`, round t uses `k_expand, k_score, k_embed, k_alloc = keys[t]`),
so on a given key it must reproduce the engine's run exactly.

Slot positions matter to the world (a copy's draws and its fresh-child index depend on its slot
index), so the reference keeps N positions per round; a dead position (temperature sampling, after
its path finished) holds a copy of the root and is never read back.
"""

from __future__ import annotations

import collections
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import dora_jax
import dora_jax.world as W
from dora_jax.rules import BEAM_WIDTH

MAX_ROUNDS = 40  # T_max, the paper's num_iterations
NO_ANSWER = -1
LEDGER_FIELDS = (
    "rollouts",
    "policy_tokens",
    "prm_calls",
    "prm_tokens",
    "prm_tokens_cached",
    "embed_calls",
    "embed_tokens",
)


# The world's functions, compiled one call at a time (the config is static; `final` is an array
# so the last round does not recompile).
_expand = jax.jit(W.expand, static_argnames=("config",))
_score = jax.jit(W.score, static_argnames=("config",))
_embed = jax.jit(W.embed, static_argnames=("config",))


def _records(slots: W.Slots) -> list[W.Slots]:
    """A batched Slots → a Python list of N one-slot records (NumPy leaves)."""
    host = jax.device_get(slots)
    n = host.depth.shape[0]
    return [W.Slots(*(np.asarray(leaf[i]) for leaf in host)) for i in range(n)]


def _batch(records: list[W.Slots]) -> W.Slots:
    """A Python list of one-slot records → a batched Slots (leading axis N)."""
    return W.Slots(*(jnp.asarray(np.stack(leaves)) for leaves in zip(*records, strict=True)))


def _first_max(items: list[Any], value) -> Any:
    """The first item (in list order) whose value is largest."""
    best = items[0]
    for item in items[1:]:
        if value(item) > value(best):
            best = item
    return best


def votes(finished: list[dict], budget: int) -> dict[str, Any]:
    """The four verdicts over the first N finished solutions (Counter/dict sums).

    "No answer" (−1) never wins; ties between answers go to the answer that finished first
    (dicts keep insertion order, and `_first_max` keeps the first of equal totals).
    """
    counted = finished[:budget]
    answered = [f for f in counted if f["answer"] != NO_ANSWER]
    correct_answer = {f["answer"]: f["correct"] for f in answered}  # one answer, one verdict

    if answered:
        counts = collections.Counter(f["answer"] for f in answered)
        majority = _first_max(list(counts), lambda a: counts[a])
        weights: dict[int, float] = {}
        for f in answered:
            weights[f["answer"]] = weights.get(f["answer"], 0.0) + float(f["score"])
        weighted = _first_max(list(weights), lambda a: weights[a])
        best = _first_max(answered, lambda f: f["score"])
        accuracy = correct_answer[weighted]
        majority_ok = correct_answer[majority]
        best_ok = best["correct"]
    else:
        accuracy = majority_ok = best_ok = False
    num_correct = sum(f["correct"] for f in counted)
    return {
        "accuracy": bool(accuracy),
        "majority": bool(majority_ok),
        "best_of_n": bool(best_ok),
        "pass_at_n": any(f["correct"] for f in counted),
        "correct_fraction": num_correct / max(len(counted), 1),
    }


def reference_search(
    key: jax.Array,
    problem: W.Problem,
    config: W.WorldConfig,
    method: str,
    budget: int,
    *,
    max_rounds: int = MAX_ROUNDS,
    **hyperparameters: Any,
) -> dict[str, Any]:
    """Algorithm 1 on one problem of the synthetic world, with obvious bookkeeping.

    Args:
      key: the search's key (split into the per-round keys exactly as the engine does).
      problem: a `dora_jax.world.Problem` (no leading axis).
      config: the world (static).
      method: an allocation rule name (`dora_jax.METHODS`).
      budget: N.
      max_rounds: T_max; round T_max − 1 finishes every path.
      **hyperparameters: the rule's (e.g. beam_width=4, prefilter="rebase_round").

    Returns:
      A dict with the quantities of `SearchResult`: the votes ("accuracy" = PRM-weighted majority,
      "majority", "best_of_n", "pass_at_n", "correct_fraction"), "rounds", "num_finished",
      "finished" (dict of lists in finish order: answer, correct, score, tokens, round, direction),
      "trace" (dict of per-executed-round lists: active, finished, directions, parent, allocation)
      and "ledger" (dict of ints).
    """
    n = budget
    keys = jax.random.split(key, (max_rounds, 4))
    prompt = W.prompt_tokens(config)
    beam_width = hyperparameters.get("beam_width", BEAM_WIDTH)
    refills = method != "temperature_sampling"

    root = _records(W.init_slots(problem, config, n))
    slots = list(root)  # slot s of this round
    alive = [True] * n
    group = [s // beam_width for s in range(n)]  # DVTS subtree; copies inherit it
    finished: list[dict] = []
    ledger = dict.fromkeys(LEDGER_FIELDS, 0)
    trace: dict[str, list] = {k: [] for k in ("active", "finished", "directions", "parent")}
    trace["allocation"] = []

    rounds = 0
    for t in range(max_rounds):
        k_expand, k_score, k_embed, k_alloc = keys[t]
        final = t == max_rounds - 1
        rounds = t + 1

        # 1. every alive slot generates one step; 2. every slot is scored.
        batch, step = _expand(
            k_expand, problem, _batch(slots), config=config, final=jnp.bool_(final)
        )
        scores = np.asarray(_score(k_score, problem, batch, config=config))
        step = jax.device_get(step)
        expanded = _records(batch)

        active = [s for s in range(n) if alive[s]]
        ended = [s for s in active if step.finished[s]]
        survivors = [s for s in active if not step.finished[s]]
        for s in ended:  # appended in slot order
            finished.append(
                {
                    "answer": int(step.answer[s]),
                    "correct": bool(step.correct[s]),
                    "score": np.float32(scores[s]),
                    "tokens": int(expanded[s].tokens),
                    "round": t,
                    "direction": int(step.direction[s]),
                }
            )

        # The ledger: one rollout and one PRM call per active slot; the policy writes each token
        # once (plus the prompt once); the uncached PRM re-reads prompt + path at every call.
        ledger["rollouts"] += len(active)
        ledger["prm_calls"] += len(active)
        new_tokens = sum(int(step.tokens[s]) for s in active) + (prompt if t == 0 else 0)
        ledger["policy_tokens"] += new_tokens
        ledger["prm_tokens_cached"] += new_tokens
        ledger["prm_tokens"] += sum(prompt + int(expanded[s].tokens) for s in active)

        trace["active"].append(len(active))
        trace["finished"].append(len(ended))
        trace["directions"].append(len({int(step.direction[s]) for s in survivors}))

        # 3. stop at >= N finished, at the last round, or when nothing is left alive.
        if len(finished) >= n or final or not survivors:
            trace["parent"].append([-1] * n)
            trace["allocation"].append([0] * n)
            break

        # 4. allocate N over the survivors and re-slot.
        if not refills:  # temperature sampling: survivors keep their slots, finished ones die
            counts = [1 if s in survivors else 0 for s in range(n)]
            parent = [s if s in survivors else -1 for s in range(n)]
            slots = [expanded[s] if s in survivors else root[s] for s in range(n)]
            alive = [s in survivors for s in range(n)]
        else:
            mask = np.array([s in survivors for s in range(n)])
            extra = dict(hyperparameters)
            if method == "dvts":
                extra["groups"] = np.asarray(group, np.int32)
            if method == "dora":
                extra["embeddings"] = _embed(k_embed, problem, batch, config=config)
                ledger["embed_calls"] += len(survivors)
                ledger["embed_tokens"] += sum(int(expanded[s].tokens) for s in survivors)
            counts = np.asarray(
                dora_jax.allocate(method, scores, n, key=k_alloc, mask=mask, **extra)
            ).tolist()
            assert sum(counts) == n and all(counts[s] == 0 for s in range(n) if not mask[s])
            parent = [j for j in range(n) for _ in range(counts[j])]  # j repeated B_j times
            slots = [expanded[j] for j in parent]
            group = [group[j] for j in parent]
            alive = [True] * n
        trace["parent"].append(parent)
        trace["allocation"].append(counts)

    return {
        **votes(finished, n),
        "rounds": rounds,
        "num_finished": len(finished),
        "finished": {
            name: [f[name] for f in finished]
            for name in ("answer", "correct", "score", "tokens", "round", "direction")
        },
        "trace": trace,
        "ledger": ledger,
    }
