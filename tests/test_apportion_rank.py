"""`rank_pairwise` (the counting rank that `hamilton` uses) gives `rank_descending`'s ranks bit for
bit: with and without tie keys, masks, many equal values, zeros of both signs and infinities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dora_jax.apportion import hamilton, rank_descending, rank_pairwise

CASES = 200


@pytest.mark.parametrize("keyed", [False, True])
def test_pairwise_ranks_are_the_sorted_ranks(keyed):
    rng = np.random.default_rng(0)
    k = 16
    values = rng.choice(
        np.array([0.0, -0.0, 0.25, 0.5, 0.75, 1e-8, np.inf], np.float32), (CASES, k)
    )
    values[: CASES // 2] = rng.random((CASES // 2, k), dtype=np.float32)  # distinct values too
    mask = rng.random((CASES, k)) < 0.8
    mask[0] = False  # nothing valid
    keys = jax.random.split(jax.random.key(1), CASES) if keyed else None
    args = (jnp.asarray(values), jnp.asarray(mask))
    if keyed:
        sorted_ = jax.vmap(rank_descending)(*args, keys)
        counted = jax.vmap(rank_pairwise)(*args, keys)
    else:
        sorted_ = jax.vmap(rank_descending)(*args)
        counted = jax.vmap(rank_pairwise)(*args)
    np.testing.assert_array_equal(np.asarray(counted), np.asarray(sorted_))
    # the cases must hold equal valid values, where the tie-break decides
    primary = np.where(mask, -values, np.inf)
    ties = (primary[:, :, None] == primary[:, None, :]).sum(-1) > 1
    assert ties.any(), "the cases must contain ties, or the tie-break is untested"


def test_hamilton_with_a_key_matches_the_sorted_rank():
    """The allocation itself: the same counts as hamilton with the sort-based rank."""
    rng = np.random.default_rng(2)
    k, n = 64, 64
    shares = rng.choice(np.array([1, 2, 3], np.float32), (CASES, k))
    mask = rng.random((CASES, k)) < 0.7
    shares = np.where(mask, shares, 0)
    shares /= shares.sum(1, keepdims=True)
    keys = jax.random.split(jax.random.key(3), CASES)

    def by_sort(w, m, key):
        quota = n * w
        floor = jnp.floor(quota)
        remainder = jnp.where(m, quota - floor, 0)
        base = jnp.where(m, floor.astype(jnp.int32), 0)
        leftover = n - jnp.sum(base, dtype=jnp.int32)
        return base + ((rank_descending(remainder, m, key) < leftover) & m).astype(jnp.int32)

    args = (jnp.asarray(shares), jnp.asarray(mask), keys)
    got = jax.vmap(lambda w, m, key: hamilton(w, n, m, key))(*args)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(jax.vmap(by_sort)(*args)))
    assert (np.asarray(got).sum(1) == n).all()
