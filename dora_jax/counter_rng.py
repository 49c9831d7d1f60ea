"""A counter-based hash RNG: keyed, stateless uint32 streams for draws that compile small.

No threefry: each threefry call site (fold_in, split, bits) costs ~0.3–1 s of XLA CPU compile,
and the search engine compiles the synthetic world once per (rule, N). Every draw instead reads
words from a keyed counter hash of a key's data, x_i = mix(mix(G·i ^ a) + b), where (a, b) is a
64-bit digest of (key words, stream tag) and mix is the "triple32" 32-bit permutation (C. Wellons'
hash-prospector; bias ≈ 0.02, near the ideal). Streams (small integer tags) separate the uses of
one key; the same key and tag give the same bits. Normals are inverse-CDF transforms; Gamma and
Beta draws use at most `PROPOSALS` Marsaglia–Tsang proposals (`log_gamma_lanes`). Word i of a
stream depends on i alone, so a draw that reads its words one at a time gets the same bits however
its reads are scheduled: the common first steps run for every lane at once, and the few lanes that
need more finish in a loop over a few seats (`finish_stragglers`; a batched loop runs until its
slowest element is done, so a loop over all lanes would make every lane pay for the slowest one),
whose body XLA compiles once, small.

Used by `dora_jax.world`; every function is pure and shape-polymorphic over leading axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, UInt32

__all__ = [
    "GAMMA_UNIFORMS",
    "GOLDEN",
    "PROPOSALS",
    "beta",
    "beta_lanes",
    "bits",
    "digest",
    "finish_stragglers",
    "hash31",
    "key_data",
    "log_gamma_lanes",
    "log_gammas",
    "mix32",
    "normal",
    "open_uniform",
    "uniforms",
    "words",
]

GOLDEN = 0x9E3779B9  # 2^32 / φ: the counter stride
# Proposals per Gamma draw (see log_gammas); a draw reserves 2·PROPOSALS + 1 uniforms.
PROPOSALS = 8
GAMMA_UNIFORMS = 2 * PROPOSALS + 1


def key_data(key: PRNGKeyArray) -> UInt32[Array, " KD"]:
    """The uint32 key data of a typed key (any implementation) or of raw key data."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return jnp.asarray(key, jnp.uint32)


def mix32(x: UInt32[Array, "*S"]) -> UInt32[Array, "*S"]:
    """triple32: a bijection of uint32 with near-ideal avalanche."""
    x = x ^ (x >> jnp.uint32(17))
    x = x * jnp.uint32(0xED5AD4BB)
    x = x ^ (x >> jnp.uint32(11))
    x = x * jnp.uint32(0xAC4C1B51)
    x = x ^ (x >> jnp.uint32(15))
    x = x * jnp.uint32(0x31848BAB)
    return x ^ (x >> jnp.uint32(14))


def digest(data: UInt32[Array, " KD"], stream: int) -> UInt32[Array, " 2"]:
    """(a, b): the 64-bit digest of (key data, stream tag) that keys a counter stream."""
    a = mix32(jnp.uint32((stream * GOLDEN) & 0xFFFFFFFF))
    b = mix32(a ^ jnp.uint32(0x85EBCA6B))
    for j in range(data.shape[-1]):
        word = data[..., j]
        a = mix32(a ^ word)
        b = mix32(b + (word ^ jnp.uint32(0xC2B2AE35)))
    return jnp.stack([a, b], axis=-1)


def words(stream_key: UInt32[Array, " 2"], counter: UInt32[Array, "*S"]) -> UInt32[Array, "*S"]:
    """Words number `counter` (may be traced) of the stream keyed by `stream_key`."""
    return mix32(mix32(counter * jnp.uint32(GOLDEN) ^ stream_key[..., 0]) + stream_key[..., 1])


def bits(data: UInt32[Array, " KD"], stream: int, shape: tuple[int, ...]) -> UInt32[Array, "..."]:
    """Pseudo-random uint32 words: a keyed counter hash of (key data, stream tag)."""
    counter = jnp.arange(math.prod(shape), dtype=jnp.uint32).reshape(shape)
    return words(digest(data, stream), counter)


def open_uniform(x: UInt32[Array, "*S"]) -> Float[Array, "*S"]:
    """Uniforms on the open interval (0, 1) (23-bit grid, midpoints) from words."""
    # 23 bits + 1/2: k + 0.5 (k < 2^23) is exact in float32, so u ∈ [2^-24, 1 − 2^-24].
    return ((x >> jnp.uint32(9)).astype(jnp.float32) + 0.5) * jnp.float32(2.0**-23)


def uniforms(
    data: UInt32[Array, " KD"], stream: int, shape: tuple[int, ...]
) -> Float[Array, "..."]:
    """Uniforms on the open interval (0, 1) (23-bit grid, midpoints)."""
    return open_uniform(bits(data, stream, shape))


def normal(u: Float[Array, "*S"]) -> Float[Array, "*S"]:
    """Standard normals from open uniforms by the inverse CDF."""
    return jnp.float32(math.sqrt(2.0)) * jax.lax.erf_inv(2.0 * u - 1.0)


def _columns(lanes: Any) -> tuple[Array, ...]:
    """The leaves of a pytree of [L, ...] arrays as [L] columns (a gather or scatter of single
    elements costs XLA CPU ~2 ns, of a row of 8 ~60: the loop keeps its data in columns)."""
    columns: list[Array] = []
    for x in jax.tree.leaves(lanes):
        flat = x.reshape(x.shape[0], -1)
        columns.extend(flat[:, i] for i in range(flat.shape[1]))
    return tuple(columns)


def _unpacker(lanes: Any) -> Callable[[tuple[Array, ...]], Any]:
    """The function that turns one lane's scalars of `_columns(lanes)` back into the pytree of
    one lane."""
    leaves, tree = jax.tree.flatten(lanes)
    shapes = [x.shape[1:] for x in leaves]

    def unpack(row):
        out, start = [], 0
        for shape in shapes:
            width = math.prod(shape)
            out.append(jnp.stack(row[start : start + width]).reshape(shape))
            start += width
        return jax.tree.unflatten(tree, out)

    return unpack


def _straggler_loop(
    step: Callable[[tuple[Array, ...]], tuple[tuple[Array, ...], Bool[Array, ""]]],
    store: Callable[[tuple[Array, ...]], tuple[Array, ...]],
    table: tuple[Array, ...],
    out: tuple[Array, ...],
    pending: Bool[Array, "B L"],
    width: int,
) -> tuple[Array, ...]:
    """`finish_stragglers` on B independent tables of lanes (columns [B, L]) in ONE loop that is
    not batched: it runs while any seat of any table is busy, and an idle table's seats write
    nothing, so no iteration selects or copies the tables (a vmapped loop would, whole). Seats
    read their lanes from `table` and store only the `store` columns of a finished lane in `out`
    (one scatter per stored column: each costs XLA compile time)."""
    count = pending.shape[1]

    def queue_of(pending):  # queue[i]: the i-th pending lane; `count` (no lane) past the last
        position = jnp.cumsum(pending, dtype=jnp.int32) - pending.astype(jnp.int32)
        queue = jnp.full((count,), count, jnp.int32)
        return queue.at[jnp.where(pending, position, count)].set(
            jnp.arange(count, dtype=jnp.int32), mode="drop"
        )

    queue = jax.vmap(queue_of)(pending)

    def load(queue, table, turn):  # the lane of queue position `turn` (`count`: none), its row
        lane = jnp.where(turn < count, queue[jnp.minimum(turn, count - 1)], count)
        at = jnp.minimum(lane, count - 1)
        return lane, tuple(column[at] for column in table)

    def seat_step(queue, table, out, turn, lane, row):
        row, done = jax.vmap(step)(row)
        done = done | (lane >= count)
        # a finished lane is stored; an unfinished one (or an empty seat) writes nothing
        write = jnp.where(done, lane, count)
        kept = jax.vmap(store)(row)
        out = tuple(c.at[write].set(r, mode="drop") for c, r in zip(out, kept, strict=True))
        turn = jnp.where(done, turn + width, turn)
        next_lane, next_row = load(queue, table, turn)
        lane = jnp.where(done, next_lane, lane)
        row = tuple(jnp.where(done, n, r) for n, r in zip(next_row, row, strict=True))
        return out, turn, lane, row

    def busy(carry):
        return jnp.any(carry[2] < count)

    def body(carry):
        out, turn, lane, row = carry
        return jax.vmap(seat_step)(queue, table, out, turn, lane, row)

    turn = jnp.broadcast_to(jnp.arange(width, dtype=jnp.int32), (pending.shape[0], width))
    lane, row = jax.vmap(load)(queue, table, turn)
    out, _, _, _ = jax.lax.while_loop(busy, body, (out, turn, lane, row))
    return out


def finish_stragglers(
    advance: Callable[[Any], tuple[Any, Bool[Array, ""]]],
    lanes: Any,
    pending: Bool[Array, " L"],
    *,
    width: int,
    store: Callable[[Any], Any],
) -> Any:
    """Runs `advance` on the pending lanes only, `width` seats at a time, each until it is done,
    and returns `store` of every lane's final data.

    A draw whose loop most lanes leave after a step or two (a rejection sampler, stick-breaking)
    takes those steps for every lane outside, vectorized, and hands the few lanes still undecided
    here. Seat s runs the pending lanes number s, s + width, s + 2·width, … one after the other:
    each loop iteration advances every seat once (`advance` vmapped over the seats: one loop
    body, compiled once), and a seat whose lane is done stores its result and takes its next
    lane. A lane's steps read only its own data, so which seat runs them, and when, never changes
    a bit.

    Under `vmap` (the engine maps this over problems) it does not become a vmapped while loop,
    which would run every batch element's seats until the slowest is done and select and copy
    every lane's data at each iteration: a custom batching rule runs the batch's tables of lanes
    in one unbatched loop, each with its own queue and seats, so an iteration costs the seats'
    steps. `advance` and `store` must be pure functions of a lane's data (no captured traced
    values).

    Args:
      advance: the data of one lane (inputs and state) → (its data after one step, done: Bool[]).
      lanes: pytree of [L, ...] arrays: every lane's data (pending lanes: before their next step).
      pending: Bool[L], the lanes that need at least one more step.
      width: seats (static); clipped to [1, L].
      store: the data of one lane → its result (a pytree of arrays).
    Returns:
      `store` of each lane's data, leading axis L: after its last step for the pending lanes, as
      given for the others.
    """
    count = pending.shape[0]
    width = max(1, min(width, count))
    unpack = _unpacker(lanes)
    results = jax.vmap(store)(lanes)
    unpack_result = _unpacker(results)

    def one(tree):  # the scalars of one lane's pytree, in `_columns` order
        return tuple(x.reshape(()) for x in _columns(jax.tree.map(lambda x: x[None], tree)))

    def step(row):
        new, done = advance(unpack(row))
        return one(new), done

    def keep(row):
        return one(store(unpack(row)))

    @jax.custom_batching.custom_vmap
    def run(table, out, pending):  # columns [*B, L]: any number of leading batch axes
        shape = pending.shape
        flat = tuple(c.reshape(-1, count) for c in table)
        flat_out = tuple(c.reshape(-1, count) for c in out)
        done = _straggler_loop(step, keep, flat, flat_out, pending.reshape(-1, count), width)
        return tuple(c.reshape(shape) for c in done)

    @run.def_vmap
    def _run_batched(axis_size, in_batched, table, out, pending):
        def batched(x, is_batched):
            return x if is_batched else jnp.broadcast_to(x, (axis_size, *x.shape))

        table = tuple(batched(c, b) for c, b in zip(table, in_batched[0], strict=True))
        out = tuple(batched(c, b) for c, b in zip(out, in_batched[1], strict=True))
        return run(table, out, batched(pending, in_batched[2])), (True,) * len(out)

    done = run(_columns(lanes), _columns(results), pending.astype(bool))
    return jax.vmap(unpack_result)(done)


# Proposals a Gamma draw makes for every lane before its stragglers are handed on: the first is
# accepted with probability ≥ 0.95, so ~1 lane in 20 needs the straggler loop.
_FIRST_PROPOSALS = 1
# Straggler seats per lane of a Gamma draw (~0.6 per expected undecided lane: a few seats that
# refill cost less than many idle ones; measured best of 1/8, 1/16, 1/32).
_GAMMA_SEATS_PER_LANE = 1 / 32


def log_gamma_lanes(
    stream_key: UInt32[Array, "L 2"], start: Int[Array, " L"], a: Float[Array, " L"]
) -> Float[Array, " L"]:
    """logs of independent Gamma(a_i, 1) draws, one per lane (Marsaglia & Tsang 2000); lane i
    reads the 2·PROPOSALS + 1 uniforms at counters start_i + [0, GAMMA_UNIFORMS) of its stream.

    jax.random.gamma's rejection loop costs ~2 s of XLA compile per call site on CPU. Here
    proposal j reads fixed counters (its normal at j, its acceptance uniform at PROPOSALS + j) and
    the first accepted one is kept; each is accepted with probability ≥ 0.95 (a ≥ 1), so all
    PROPOSALS fail with probability ≤ 0.05^8 ≈ 4e-11, and then the mode is returned. Which
    proposal is kept depends only on which were accepted, never on their values, so the kept one
    is exactly Gamma. Every lane makes its first proposal; the ~5% it rejects make the rest in
    `finish_stragglers` (one loop body, over a few seats), so the batch computes ≈ 1.05
    proposals per draw, not its slowest draw's count. Neither changes a bit of the result. a < 1
    is boosted: Gamma(a) = Gamma(a + 1)·U^(1/a) (the last uniform). Logs keep Beta draws with
    tiny parameters accurate.
    """
    a = jnp.asarray(a, jnp.float32)
    start = jnp.asarray(start).astype(jnp.uint32)
    small = a < 1.0
    d = jnp.where(small, a + 1.0, a) - jnp.float32(1.0 / 3.0)
    c = jax.lax.rsqrt(9.0 * d)

    def uniform(key, counter):
        return open_uniform(words(key, counter))

    def propose(lane, j):
        """Proposal j of each lane: (accepted, log v)."""
        key, first, di, ci = lane
        counter = first + j.astype(jnp.uint32)
        x = normal(uniform(key, counter))
        v = (1.0 + ci * x) ** 3
        log_v = jnp.log(jnp.where(v > 0, v, 1.0))
        log_accept = jnp.log(uniform(key, counter + jnp.uint32(PROPOSALS)))
        ok = (v > 0) & (log_accept < 0.5 * x * x + di - di * v + di * log_v)
        return ok, log_v

    lanes = (stream_key, start, d, c)
    # kept: the log v of the first accepted proposal, NaN while none is
    kept = jnp.full(a.shape, jnp.nan, jnp.float32)
    for j in range(_FIRST_PROPOSALS):
        ok, log_v = propose(lanes, jnp.full(a.shape, j, jnp.int32))
        kept = jnp.where(jnp.isnan(kept) & ok, log_v, kept)

    def advance(carry):
        lane, j, kept = carry
        ok, log_v = propose(lane, j)
        return (lane, j + 1, jnp.where(ok, log_v, kept)), ok | (j + 1 >= PROPOSALS)

    if _FIRST_PROPOSALS < PROPOSALS:
        undecided = jnp.isnan(kept)
        seats = math.ceil(a.shape[0] * _GAMMA_SEATS_PER_LANE)
        tried = jnp.full(a.shape, _FIRST_PROPOSALS, jnp.int32)
        kept = finish_stragglers(
            advance, (lanes, tried, kept), undecided, width=seats, store=lambda lane: lane[2]
        )
    log_g = jnp.log(d) + jnp.where(jnp.isnan(kept), 0.0, kept)  # log v = 0: the mode
    log_boost = jnp.log(uniform(stream_key, start + jnp.uint32(2 * PROPOSALS)))
    return jnp.where(small, log_g + log_boost / a, log_g)


def log_gammas(
    stream_key: UInt32[Array, " 2"], starts: tuple[int, ...], shapes: tuple[Float[Array, ""], ...]
) -> tuple[Float[Array, ""], ...]:
    """`log_gamma_lanes` for a few draws from one stream: draw i reads the uniforms at counters
    starts[i] + [0, GAMMA_UNIFORMS) and has shape parameter shapes[i]."""
    count = len(starts)
    logs = log_gamma_lanes(
        jnp.broadcast_to(stream_key, (count, 2)),
        jnp.asarray(starts, jnp.uint32),
        jnp.stack([jnp.asarray(a, jnp.float32) for a in shapes]),
    )
    return tuple(logs[i] for i in range(count))


def beta_lanes(
    stream_key: UInt32[Array, "L 2"], start: int, a: Float[Array, " L"], b: Float[Array, " L"]
) -> Float[Array, " L"]:
    """Beta(a_i, b_i) draws X/(X + Y), X ~ Gamma(a_i), Y ~ Gamma(b_i) (computed in logs), one per
    lane, from the 2·GAMMA_UNIFORMS uniforms at counters start + [0, 2·GAMMA_UNIFORMS) of the
    lane's stream: the 2L Gamma draws are the lanes of one `log_gamma_lanes` call."""
    count = a.shape[0]
    starts = jnp.concatenate(
        [
            jnp.full((count,), start, jnp.uint32),
            jnp.full((count,), start + GAMMA_UNIFORMS, jnp.uint32),
        ]
    )
    logs = log_gamma_lanes(
        jnp.concatenate([stream_key, stream_key]),
        starts,
        jnp.concatenate([a, b]).astype(jnp.float32),
    )
    log_x, log_y = logs[:count], logs[count:]
    return jnp.exp(log_x - jnp.logaddexp(log_x, log_y))


def beta(
    stream_key: UInt32[Array, " 2"], start: int, a: Float[Array, ""], b: Float[Array, ""]
) -> Float[Array, ""]:
    """One Beta(a, b) draw (`beta_lanes` with one lane)."""
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    return beta_lanes(stream_key[None], start, a[None], b[None])[0]


def hash31(data: UInt32[Array, "*S KD"]) -> Int[Array, "*S"]:
    """FNV-1a-style mix of the key words, top 31 bits as int32."""
    h = jnp.full(data.shape[:-1], 0x811C9DC5, dtype=jnp.uint32)
    for j in range(data.shape[-1]):
        h = (h ^ data[..., j]) * jnp.uint32(0x01000193)
    h = h ^ (h >> jnp.uint32(15))
    return (h >> jnp.uint32(1)).astype(jnp.int32)
