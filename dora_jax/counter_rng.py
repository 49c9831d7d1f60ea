"""A counter-based hash RNG: keyed, stateless uint32 streams for draws that compile small.

No threefry: each threefry call site (fold_in, split, bits) costs ~0.3–1 s of XLA CPU compile,
and the search engine compiles the synthetic world once per (rule, N). Every draw instead reads
words from a keyed counter hash of a key's data, x_i = mix(mix(G·i ^ a) + b), where (a, b) is a
64-bit digest of (key words, stream tag) and mix is the "triple32" 32-bit permutation (C. Wellons'
hash-prospector; bias ≈ 0.02, near the ideal). Streams (small integer tags) separate the uses of
one key; the same key and tag give the same bits. Normals are inverse-CDF transforms; Gamma and
Beta draws use at most `PROPOSALS` Marsaglia–Tsang proposals (`log_gammas`). Word i of a stream
depends on i alone, so a draw that reads its words one at a time in a while loop gets the same
bits however long the loop runs: a batched loop runs until its slowest element is done, and XLA
compiles a loop body once, small.

Used by `dora_jax.world`; every function is pure and shape-polymorphic over leading axes.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray, UInt32

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
