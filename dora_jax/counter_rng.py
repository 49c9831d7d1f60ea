"""A counter-based hash RNG: keyed, stateless uint32 streams for draws that compile small.

No threefry: each threefry call site (fold_in, split, bits) costs ~0.3–1 s of XLA CPU compile,
and the search engine compiles the synthetic world once per (rule, N). Every draw instead reads
words from a keyed counter hash of a key's data, x_i = mix(mix(G·i ^ a) + b), where (a, b) is a
64-bit digest of (key words, stream tag) and mix is the "triple32" 32-bit permutation (C. Wellons'
hash-prospector; bias ≈ 0.02, near the ideal). Streams (small integer tags) separate the uses of
one key; the same key and tag give the same bits. Normals are inverse-CDF transforms; Gamma and
Beta draws use at most `PROPOSALS` Marsaglia–Tsang proposals (`log_gammas`). Word i of a stream
depends on i alone, so a draw that reads its words one at a time in a loop gets the same bits
however the loop is run: a vmapped while loop runs until its slowest element is done (Gamma
proposals: 3-5 trips), or a few steps for every draw and then only the rare draws that need more
loop on their own (`settle` over the whole vmapped batch, `whole_batch`: the GEM sticks).

Used by `dora_jax.world`; every function is pure and shape-polymorphic over leading axes.
"""

from __future__ import annotations

import functools
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
    "bits",
    "digest",
    "hash31",
    "key_data",
    "log_gammas",
    "mix32",
    "normal",
    "open_uniform",
    "settle",
    "uniforms",
    "whole_batch",
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


def whole_batch(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` (arrays of any leading shape, elementwise over it) with a vmap rule that calls it once
    on the whole batch, every vmap level folded in: (batched) leading axes are just more items.

    A while loop under vmap runs until its slowest item is done, every item paying every trip;
    called on the whole batch, `fn` can instead give its rare slow items a loop of their own
    (`settle`). Arguments are pytrees of arrays whose leading axes are the items' (an unbatched
    one is broadcast to the batch); `fn` must close over no traced value.
    """
    batched = jax.custom_batching.custom_vmap(fn)

    @batched.def_vmap
    def rule(axis_size, in_batched, *args):
        args = jax.tree.map(
            lambda x, b: x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x))),
            args,
            tuple(in_batched),
        )
        out = batched(*args)
        return out, jax.tree.map(lambda _: True, out)

    return batched


def settle(
    step: Callable[[Any, Any], Any],
    undecided: Callable[[Any, Any], Bool[Array, " n"]],
    state: Any,
    consts: Any,
    *,
    unrolled: int,
    buffer: int,
) -> Any:
    """Applies `step` to each undecided item of `state` until none is left; the result is the
    one a per-item while loop (or a vmapped one) gives, bit for bit.

    The first `unrolled` steps run on every item as straight-line code (the common case); the
    items still undecided then (the stragglers) are compacted, up to `buffer` at a time, into a
    small batch that loops alone, and are scattered back. `step` must be elementwise, and an
    item's step may depend only on its own state and consts: the items are independent.

    Args:
      step: (state, consts) -> state, on pytrees of [b, ...] arrays.
      undecided: (state, consts) -> Bool[b], the items that `step` still moves.
      state: pytree of [n, ...] arrays, the loop's carry.
      consts: pytree of [n, ...] arrays that `step` reads and never changes.
      unrolled: the steps every item takes before the stragglers are split off (static).
      buffer: the stragglers looped together per round (static; more rounds if there are more).
    Returns:
      The final state, [n, ...].
    """

    def masked(state, consts):
        live = undecided(state, consts)
        new = step(state, consts)
        return jax.tree.map(lambda a, b: jnp.where(_expand_to(live, a), a, b), new, state)

    # A fixed-count loop, not straight-line code: unrolled, XLA CPU fuses the chain of steps and
    # recomputes each step's state in every consumer (8 Gamma proposals cost ~10x 8 loop trips).
    state = jax.lax.fori_loop(0, unrolled, lambda _, state: masked(state, consts), state)
    n = jax.tree.leaves(state)[0].shape[0]
    size = min(n, buffer)

    def stragglers(state):
        # index of the j-th undecided item: where the running count first reaches j (a linear
        # associative scan and a binary search; jnp.nonzero's cumsum is ~1.5x the cost on CPU)
        count = jax.lax.associative_scan(jnp.add, undecided(state, consts).astype(jnp.int32))
        wanted = jnp.arange(1, size + 1, dtype=jnp.int32)
        index = jnp.searchsorted(count, wanted, side="left", method="scan").astype(jnp.int32)
        safe = jnp.minimum(index, n - 1)
        sub_state, sub_consts = jax.tree.map(lambda x: x[safe], (state, consts))
        real = index < n

        def busy(sub):
            return jnp.any(real & undecided(sub, sub_consts))

        sub_state = jax.lax.while_loop(busy, lambda sub: masked(sub, sub_consts), sub_state)
        # a padding entry (index n) is dropped; real entries are distinct
        return jax.tree.map(lambda x, y: x.at[index].set(y, mode="drop"), state, sub_state)

    return jax.lax.while_loop(lambda state: jnp.any(undecided(state, consts)), stragglers, state)


def _expand_to(mask: Bool[Array, " n"], x: Array) -> Bool[Array, "..."]:
    return mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))


def log_gammas(
    stream_key: UInt32[Array, " 2"], starts: tuple[int, ...], shapes: tuple[Float[Array, ""], ...]
) -> tuple[Float[Array, ""], ...]:
    """logs of independent Gamma(a_i, 1) draws, a_i = shapes[i] (Marsaglia & Tsang 2000); draw i
    reads the 2·PROPOSALS + 1 uniforms at counters starts[i] + [0, GAMMA_UNIFORMS) of `stream_key`.

    jax.random.gamma's rejection loop costs ~2 s of XLA compile per call site on CPU. Here
    proposal j reads fixed counters (its normal at j, its acceptance uniform at PROPOSALS + j) and
    the first accepted one is kept; each is accepted with probability ≥ 0.95 (a ≥ 1), so all
    PROPOSALS fail with probability ≤ 0.05^8 ≈ 4e-11, and then the mode is returned. Which
    proposal is kept depends only on which were accepted, never on their values, so the kept one
    is exactly Gamma. The proposals run in a while loop, one per draw and iteration, that stops
    once every draw has accepted one (under vmap: every draw of the batch, after 3–5 iterations
    at the engine's sizes instead of always computing all 8), so XLA compiles the sampler once
    and small; when the loop stops never changes a bit of the result. a < 1 is boosted:
    Gamma(a) = Gamma(a + 1)·U^(1/a) (the last uniform). Logs keep Beta draws with tiny
    parameters accurate.
    """
    shapes = tuple(jnp.asarray(a, jnp.float32) for a in shapes)
    small = tuple(a < 1.0 for a in shapes)
    d = tuple(
        jnp.where(s, a + 1.0, a) - jnp.float32(1.0 / 3.0)
        for s, a in zip(small, shapes, strict=True)
    )
    c = tuple(jax.lax.rsqrt(9.0 * di) for di in d)

    def uniform(counter):
        return open_uniform(words(stream_key, counter))

    def undecided(carry):  # NaN marks a draw that has accepted no proposal yet
        j, kept = carry
        return (j < PROPOSALS) & functools.reduce(jnp.logical_or, map(jnp.isnan, kept))

    def propose(carry):
        j, kept = carry
        counter = j.astype(jnp.uint32)
        new = []
        for start, di, ci, k in zip(starts, d, c, kept, strict=True):
            x = normal(uniform(counter + jnp.uint32(start)))
            v = (1.0 + ci * x) ** 3
            log_v = jnp.log(jnp.where(v > 0, v, 1.0))
            log_accept = jnp.log(uniform(counter + jnp.uint32(start + PROPOSALS)))
            ok = (v > 0) & (log_accept < 0.5 * x * x + di - di * v + di * log_v)
            new.append(jnp.where(jnp.isnan(k) & ok, log_v, k))
        return j + 1, tuple(new)

    init = (jnp.int32(0), tuple(jnp.float32(jnp.nan) for _ in shapes))
    _, kept = jax.lax.while_loop(undecided, propose, init)
    out = []
    for first, a, s, di, k in zip(starts, shapes, small, d, kept, strict=True):
        log_g = jnp.log(di) + jnp.where(jnp.isnan(k), 0.0, k)  # log v = 0: the mode
        log_boost = jnp.log(uniform(jnp.uint32(first + 2 * PROPOSALS)))
        out.append(jnp.where(s, log_g + log_boost / a, log_g))
    return tuple(out)


def beta(
    stream_key: UInt32[Array, " 2"], start: int, a: Float[Array, ""], b: Float[Array, ""]
) -> Float[Array, ""]:
    """A Beta(a, b) draw X/(X + Y), X ~ Gamma(a), Y ~ Gamma(b) (computed in logs), from the
    2·GAMMA_UNIFORMS uniforms at counters start + [0, 2·GAMMA_UNIFORMS) of `stream_key`."""
    log_x, log_y = log_gammas(stream_key, (start, start + GAMMA_UNIFORMS), (a, b))
    return jnp.exp(log_x - jnp.logaddexp(log_x, log_y))


def hash31(data: UInt32[Array, "*S KD"]) -> Int[Array, "*S"]:
    """FNV-1a-style mix of the key words, top 31 bits as int32."""
    h = jnp.full(data.shape[:-1], 0x811C9DC5, dtype=jnp.uint32)
    for j in range(data.shape[-1]):
        h = (h ^ data[..., j]) * jnp.uint32(0x01000193)
    h = h ^ (h >> jnp.uint32(15))
    return (h >> jnp.uint32(1)).astype(jnp.int32)
