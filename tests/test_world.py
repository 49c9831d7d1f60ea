"""Tests of the synthetic reasoning-tree world (dora_jax.world).

Statistical checks: every Monte Carlo comparison asserts |mc − exact| < K·SE with
K = K_SIGMA = 5, whose two-sided normal tail is 5.7e-7 per comparison; the file makes 42 such
comparisons, so a correct world fails a run with probability ≤ 2.4e-5. The three KS tests (the
difficulty prior, the hash's uniforms) use the threshold KS_ALPHA = 1e-6 each. The keys are fixed,
so a given version passes or fails deterministically.

Compilation dominates the run time, so the tests share a few compiled programs: one vmapped
`expand` per config at one shape [P, N], one `start` (sample + init) and one `observe` (score +
embed) per config, all cached.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

import dora_jax.world as W
from dora_jax import counter_rng as rng

K_SIGMA = 5.0  # two-sided normal tail 2·Φ(−5) ≈ 5.7e-7 per comparison
KS_ALPHA = 1e-6

BASE = W.preset("paper-like")
IND = W.preset("independent")  # = BASE with α = ∞: every copy on its own child, i.i.d. children
P, N = 64, 64  # problems × slots of every batched call (4096 draws)


def assert_close_mc(samples, exact, what: str) -> None:
    """|mean(samples) − exact| < K_SIGMA · SE, SE from the sample standard deviation."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    se = x.std(ddof=1) / math.sqrt(x.size)
    err = abs(x.mean() - exact)
    assert err < K_SIGMA * max(se, 1e-12), (
        f"{what}: mean {x.mean():.6g} vs exact {exact:.6g}, |err| = {err:.3g} > "
        f"{K_SIGMA}·SE = {K_SIGMA * se:.3g} (n = {x.size})"
    )


@functools.cache
def start_fn(config: W.WorldConfig):
    """(keys[P], p_root[P], NaN = sampled) → (problems, slots[P, N] at the roots)."""

    def one(key, p_root):
        problem = W.sample_problem(key, config)
        problem = problem._replace(p_root=jnp.where(jnp.isnan(p_root), problem.p_root, p_root))
        return problem, W.init_slots(problem, config, N)

    return jax.jit(jax.vmap(one))


def start(key, config, p_root=math.nan):
    """P problems and their root slots; p(root) is set to p_root (a float or [P]) unless NaN."""
    p = jnp.broadcast_to(jnp.asarray(p_root, jnp.float32), (P,))
    return start_fn(config)(jax.random.split(key, P), p)


TRACES: dict[W.WorldConfig, int] = {}


@functools.cache
def expand_fn(config: W.WorldConfig):
    """expand vmapped over problems: (keys[P], problems, slots[P, N], final) → (slots, step)."""

    def batched(keys, batch, slots, final):
        TRACES[config] = TRACES.get(config, 0) + 1
        return jax.vmap(lambda k, pr, s: W.expand(k, pr, s, config, final=final))(
            keys, batch, slots
        )

    return jax.jit(batched)


def observe_one(config, key, problem, slots):
    """One problem's (scores[N], embeddings[N, E]); score and embed may share a key (the world
    reads a different stream of it for each)."""
    return W.score(key, problem, slots, config), W.embed(key, problem, slots, config)


@functools.cache
def observe_fn(config: W.WorldConfig):
    """(keys[P], problems, slots) → (scores[P, N], embeddings[P, N, E])."""
    return jax.jit(jax.vmap(functools.partial(observe_one, config)))


def observe(key, config, batch, slots):
    return observe_fn(config)(jax.random.split(key, P), batch, slots)


def expand_batch(key, config, batch, slots, *, final=False):
    keys = jax.random.split(key, P)
    return expand_fn(config)(keys, batch, slots, jnp.asarray(final))


def distinct_per_row(ids) -> np.ndarray:
    d = np.sort(np.asarray(ids), axis=-1)
    return 1 + np.sum(d[..., 1:] != d[..., :-1], axis=-1)


# ------------------------------------------------------------------------------------------
# configuration and presets


def test_presets_exist_and_bad_name_raises():
    for name in ("independent", "redundant", "paper-like", "reliable-prm", "paraphrase"):
        assert isinstance(W.preset(name), W.WorldConfig)
    assert W.preset("paper-like") == W.WorldConfig()
    assert math.isinf(W.preset("independent").alpha)
    assert W.preset("redundant").alpha < W.preset("paper-like").alpha
    assert W.preset("reliable-prm").kappa >= 100
    assert W.preset("paper-like").within_cosine >= 0.99
    assert W.preset("paraphrase").within_cosine == pytest.approx(0.9)
    with pytest.raises(ValueError, match="paper-like"):
        W.preset("no-such-world")


def test_config_is_hashable_static_and_validated():
    assert hash(W.WorldConfig()) == hash(W.WorldConfig())
    assert len({W.WorldConfig(), W.WorldConfig(), IND}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        W.WorldConfig().alpha = 1.0  # type: ignore[misc]
    for bad in (
        dict(alpha=0.0),
        dict(kappa=-1.0),
        dict(prm_mode="oracle"),
        dict(within_cosine=1.5),
        dict(finish_hazard=0.0),
        dict(embed_dim=1),
        dict(label_keep=2.0),
        dict(difficulty_a=math.nan),
    ):
        with pytest.raises(ValueError):
            W.WorldConfig(**bad)
    assert W.prompt_tokens(BASE) == BASE.prompt_tokens


def test_all_presets_run_under_jit_and_vmap():
    key = jax.random.key(0)
    # The fitted paper-* presets differ from the others only in values: one of them suffices.
    fitted = [name for name in W.PRESETS if name.startswith("paper-") and name != "paper-like"]
    for name, config in W.PRESETS.items():
        if name in fitted[1:]:
            continue
        batch, slots = start(key, config)
        for t in range(3):
            slots, _ = expand_batch(jax.random.fold_in(key, t), config, batch, slots)
        scores, emb = map(np.asarray, observe(key, config, batch, slots))
        assert scores.shape == (P, N) and scores.dtype == np.float32, name
        assert emb.shape == (P, N, config.embed_dim) and emb.dtype == np.float32, name
        assert np.all((scores > 0) & (scores < 1)), name
        np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1.0, atol=1e-5)
        assert np.all(np.isfinite(np.asarray(slots.p))), name
        np.testing.assert_array_equal(slots.depth, 3)


def test_hash_streams_are_uniform_and_uncorrelated():
    """The keyed counter hash behind every draw: uniform marginals, no correlation between
    counters of one stream, between the streams of siblings, or between parent and child."""
    n, width = 4096, 8
    roots = jax.random.key_data(jax.random.split(jax.random.key(40), n))

    @jax.jit
    def draws(roots):
        children = jax.vmap(
            lambda r: jax.vmap(lambda j: W._child_id(r, j))(jnp.arange(2, dtype=jnp.int32))
        )(roots)  # [n, 2 siblings, 2 words]
        values = jax.vmap(jax.vmap(lambda v: rng.uniforms(v, W._STREAM_VALUES, (width,))))(children)
        return (
            rng.uniforms(roots[0], W._STREAM_COPY, (n,)),
            jax.vmap(lambda r: rng.uniforms(r, W._STREAM_VALUES, (width,)))(roots),
            values,
        )

    flat, parent, child = (np.asarray(x, np.float64) for x in draws(roots))
    assert scipy.stats.kstest(flat, "uniform").pvalue > KS_ALPHA
    assert 0 < flat.min() and flat.max() < 1
    pairs = [
        (parent[:, 0], parent[:, 1], "counters 0 and 1"),
        (child[:, 0, 0], child[:, 1, 0], "sibling children"),
        (parent[:, 0], child[:, 0, 0], "parent and child"),
        (flat[:-1], flat[1:], "consecutive counters"),
    ]
    for x, y, what in pairs:
        # corr of independent uniforms: mean 0, SE 1/sqrt(n)
        corr = np.corrcoef(x, y)[0, 1]
        assert abs(corr) < K_SIGMA / math.sqrt(x.size), (what, corr)
    ids = np.asarray(jax.vmap(lambda r: W._child_id(r, jnp.int32(0)))(roots))
    assert len({tuple(x) for x in ids}) == n  # no id collisions


# ------------------------------------------------------------------------------------------
# interface: shapes, dtypes, gather, determinism, batching, compilation


def test_shapes_dtypes_and_reslot_gather():
    batch, slots = start(jax.random.key(1), BASE)
    assert batch.key.dtype == jnp.uint32 and batch.p_root.shape == (P,)
    for leaf in jax.tree.leaves(slots):
        assert leaf.shape[:2] == (P, N)
    new, step = expand_batch(jax.random.key(2), BASE, batch, slots)
    assert [x.dtype for x in step] == [jnp.bool_, jnp.bool_, jnp.int32, jnp.int32, jnp.int32]
    assert all(x.shape == (P, N) for x in step)
    assert jax.tree.map(lambda x: (x.shape, x.dtype), new) == jax.tree.map(
        lambda x: (x.shape, x.dtype), slots
    )
    np.testing.assert_array_equal(step.direction, W.direction_id(new))
    np.testing.assert_array_equal(new.depth, 1)
    np.testing.assert_array_equal(new.tokens, step.tokens)
    # the engine re-slots each problem's slots by gathering with parent indices
    parent = jnp.arange(N) // 2
    regathered = jax.tree.map(lambda x: x[:, parent], new)
    np.testing.assert_array_equal(regathered.node, np.asarray(new.node)[:, parent])
    again, _ = expand_batch(jax.random.key(3), BASE, batch, regathered)
    np.testing.assert_array_equal(again.depth, 2)


def test_same_key_same_bits_and_different_key_differs():
    batch, slots = start(jax.random.key(3), BASE)
    a = expand_batch(jax.random.key(7), BASE, batch, slots)
    b = expand_batch(jax.random.key(7), BASE, batch, slots)
    c = expand_batch(jax.random.key(8), BASE, batch, slots)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0].node, c[0].node)
    for x, y in zip(
        observe(jax.random.key(9), BASE, batch, slots),
        observe(jax.random.key(9), BASE, batch, slots),
        strict=True,
    ):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(
        jax.tree.leaves(start(jax.random.key(4), BASE)),
        jax.tree.leaves(start(jax.random.key(4), BASE)),
        strict=True,
    ):
        np.testing.assert_array_equal(x, y)


def test_batched_rows_equal_problems_run_alone():
    """Row i of a vmapped run equals problem i run alone, bitwise, over several rounds (what the
    engine's batch-independence test relies on). The single runs take raw uint32 keys, the batch
    typed ones: both forms are accepted and give the same bits."""
    batch, slots = start(jax.random.key(5), BASE)
    single = jax.jit(lambda k, pr, s: W.expand(k, pr, s, BASE))
    single_observe = jax.jit(functools.partial(observe_one, BASE))
    rows = {i: jax.tree.map(lambda x, i=i: x[i], slots) for i in (0, 7)}
    for t in range(3):
        keys = jax.random.split(jax.random.key(60 + t), P)
        slots, step = expand_fn(BASE)(keys, batch, slots, jnp.array(False))
        seen = observe_fn(BASE)(keys, batch, slots)
        for i in rows:
            raw_key = jax.random.key_data(keys[i])
            problem = jax.tree.map(lambda x, i=i: x[i], batch)
            rows[i], row_step = single(raw_key, problem, rows[i])
            for x, y in zip(
                jax.tree.leaves((rows[i], row_step)), jax.tree.leaves((slots, step)), strict=True
            ):
                np.testing.assert_array_equal(x, y[i])
            for x, y in zip(single_observe(raw_key, problem, rows[i]), seen, strict=True):
                np.testing.assert_array_equal(x, y[i])


def test_no_recompilation_for_new_keys_problems_or_final():
    counts = []
    for seed in range(4):
        batch, slots = start(jax.random.key(200 + seed), BASE)
        expand_batch(jax.random.key(300 + seed), BASE, batch, slots, final=seed % 2 == 1)
        counts.append(TRACES[BASE])
    assert counts[1:] == counts[:1] * 3, counts  # traced at most once, by the first call


def test_dtypes_stay_32_bit_under_x64(x64):
    @jax.jit
    def run(key):
        problem = W.sample_problem(key, BASE)
        return W.expand(key, problem, W.init_slots(problem, BASE, 4), BASE, final=True)

    new, step = run(jax.random.key(1))
    assert new.p.dtype == jnp.float32 and new.tokens.dtype == jnp.int32
    assert step.answer.dtype == jnp.int32 and step.tokens.dtype == jnp.int32
    assert np.asarray(step.finished).all()


# ------------------------------------------------------------------------------------------
# ground truth: the martingale and the PRM


def test_success_probability_is_a_martingale():
    p_roots = np.array([0.02, 0.3, 0.5, 0.9] * (P // 4), np.float32)
    batch, slots = start(jax.random.key(10), IND, p_roots)
    for depth in range(1, 4):
        slots, _ = expand_batch(jax.random.key(20 + depth), IND, batch, slots)
        p = np.asarray(slots.p)
        for value in np.unique(p_roots):
            # given p(root), the depth-d nodes are i.i.d. (α = ∞: one path per slot)
            assert_close_mc(p[p_roots == value], value, f"E[p(depth {depth}) | p(root)={value}]")


def test_martingale_holds_in_logit_noise_mode_too():
    """Same p-dynamics whatever the PRM. α = 3 here, so copies share nodes: the samples are the
    per-problem means (independent across problems)."""
    config = W.preset("noisy-prm")
    value = 0.3
    batch, slots = start(jax.random.key(11), config, value)
    for depth in range(1, 4):
        slots, _ = expand_batch(jax.random.key(40 + depth), config, batch, slots)
        assert_close_mc(np.asarray(slots.p).mean(axis=1), value, f"E[p(depth {depth})] (logit)")


def test_one_step_variance_matches_closed_form():
    value = 0.4
    batch, root = start(jax.random.key(12), IND, value)
    slots, _ = expand_batch(jax.random.key(13), IND, batch, root)
    c, kappa = IND.branch_concentration, IND.kappa
    f = 1 / (c + 1) + c / ((c + 1) * (kappa + 1))
    assert_close_mc((np.asarray(slots.p) - value) ** 2, f * value * (1 - value), "Var[p(c) | p(v)]")


def test_beta_mode_satisfies_eq6():
    """p | w ~ Beta(κw, κ(1 − w)): E[p − w | w] = 0 and E[(p − w)² | w] = w(1 − w)/(κ + 1), checked
    in the four quartile bins of w over depths 1–2."""
    kappa = IND.kappa
    p_roots = np.linspace(0.05, 0.95, P).astype(np.float32)
    batch, slots = start(jax.random.key(14), IND, p_roots)
    ps, ws = [], []
    for depth in range(2):
        slots, _ = expand_batch(jax.random.key(30 + depth), IND, batch, slots)
        ps.append(np.asarray(slots.p, np.float64).ravel())
        ws.append(np.asarray(slots.w, np.float64).ravel())
    p, w = np.concatenate(ps), np.concatenate(ws)
    for lo, hi in itertools.pairwise(np.quantile(w, [0, 0.25, 0.5, 0.75, 1.0])):
        sel = (w >= lo) & (w <= hi)
        assert_close_mc(p[sel] - w[sel], 0.0, f"E[p - w | w in [{lo:.2f}, {hi:.2f}]]")
        resid = (p[sel] - w[sel]) ** 2 - w[sel] * (1 - w[sel]) / (kappa + 1)
        assert_close_mc(resid, 0.0, f"Var[p | w in [{lo:.2f}, {hi:.2f}]]")


# Oracles of the two samplers that read their uniforms in a loop (world.py §randomness): the
# float64 NumPy transcription of the module doc's equations, fed the same uniforms, must pick the
# same proposal / child. A float32 decision that lands within ORACLE_MARGIN of its boundary may
# legitimately go either way, so such draws are left out (a few in 10^4).
ORACLE_MARGIN = 1e-4


def _gamma_oracle(u: np.ndarray, a: float) -> tuple[float, bool]:
    """log Gamma(a) from one draw's _GAMMA_U uniforms: the first accepted Marsaglia–Tsang
    proposal (mode if none), a < 1 boosted; and whether every decision was clear of its edge."""
    u = u.astype(np.float64)
    d = (a + 1 if a < 1 else a) - 1 / 3
    c = 1 / math.sqrt(9 * d)
    kept, clear = 0.0, True
    for j in range(rng.PROPOSALS):
        x = math.sqrt(2) * scipy.special.erfinv(2 * u[j] - 1)
        v = (1 + c * x) ** 3
        if v <= 0:
            clear &= v < -ORACLE_MARGIN
            continue
        margin = 0.5 * x * x + d - d * v + d * math.log(v) - math.log(u[rng.PROPOSALS + j])
        clear &= abs(margin) > ORACLE_MARGIN
        if margin > 0:
            kept = math.log(v)
            break
    log_g = math.log(d) + kept
    if a < 1:
        log_g += math.log(u[2 * rng.PROPOSALS]) / a
    return log_g, clear


def test_gamma_sampler_matches_its_oracle():
    """_log_gammas keeps exactly the first accepted of the proposals its counters name, whatever
    the other draws of the batch need (the loop runs until the slowest one has accepted)."""
    n = 2048
    shapes = np.array([0.05, 0.4, 0.999, 1.0, 2.5, 15.0, 30.0, 400.0], np.float32)
    keys = jax.random.key_data(jax.random.split(jax.random.key(41), n))
    draw = jax.jit(
        jax.vmap(
            jax.vmap(
                lambda kd, a: rng.log_gammas(rng.digest(kd, W._STREAM_VALUES), (5,), (a,))[0],
                in_axes=(None, 0),
            ),
            in_axes=(0, None),
        )
    )
    got = np.asarray(draw(keys, jnp.asarray(shapes)), np.float64)
    width = 5 + rng.GAMMA_UNIFORMS
    uniforms = jax.vmap(lambda kd: rng.uniforms(kd, W._STREAM_VALUES, (width,)))(keys)
    uniforms = np.asarray(uniforms)[:, 5:]
    checked = 0
    for i in range(n):
        for a, value in zip(shapes, got[i], strict=True):
            want, clear = _gamma_oracle(uniforms[i], float(a))
            if clear:
                checked += 1
                assert value == pytest.approx(want, rel=1e-4, abs=1e-4), (i, a)
    assert checked > 0.99 * n * len(shapes)


def _collatz_steps(x: int, cap: int) -> tuple[int, int]:
    steps = 0
    while x != 1 and steps < cap:
        x = x // 2 if x % 2 == 0 else 3 * x + 1
        steps += 1
    return x, steps


@pytest.mark.parametrize(("unrolled", "buffer"), [(0, 1), (2, 3), (5, 64), (200, 7)])
def test_settle_is_a_per_item_while_loop_however_it_is_split(unrolled, buffer):
    """rng.settle gives each item the state its own while loop ends in, whatever the unrolled
    prefix and the straggler buffer (1 and 3 force many rounds of compaction), with consts."""
    cap = 100
    start = np.arange(1, 65, dtype=np.int32)

    def undecided(state, consts):
        x, steps = state
        return (x != 1) & (steps < consts)

    def step(state, consts):
        x, steps = state
        return jnp.where(x % 2 == 0, x // 2, 3 * x + 1), steps + 1

    init = (jnp.asarray(start), jnp.zeros(64, jnp.int32))
    x, steps = jax.jit(
        lambda s, c: rng.settle(step, undecided, s, c, unrolled=unrolled, buffer=buffer)
    )(init, jnp.full(64, cap, jnp.int32))
    want = np.array([_collatz_steps(int(v), cap) for v in start])
    np.testing.assert_array_equal(np.asarray(x), want[:, 0])
    np.testing.assert_array_equal(np.asarray(steps), want[:, 1])
    assert len(set(want[:, 1])) > 20  # the items need very different trip counts


def test_whole_batch_sees_every_vmapped_item_at_once():
    """Under nested vmaps (one argument unbatched at the inner level) a `whole_batch` function
    runs once on all items; called directly it sees its own."""
    seen = rng.whole_batch(lambda x, y: jnp.full(x.shape, x.size, jnp.int32))
    x = jnp.zeros((3, 5), jnp.float32)
    inner = jax.vmap(seen, in_axes=(0, None))
    got = jax.jit(jax.vmap(inner, in_axes=(0, None)))(x, jnp.float32(1.0))
    np.testing.assert_array_equal(np.asarray(got), np.full((3, 5), 15))
    assert int(seen(jnp.zeros(()), jnp.zeros(()))) == 1  # control: alone, one item


@pytest.mark.parametrize("alpha", [0.5, 3.0, 40.0])
def test_child_choice_matches_its_oracle(alpha):
    """_child_index is the module doc's rule C_{k−1} ≤ u < C_k over the node's M sticks (a fresh
    child past C_M), though it adds the sticks one at a time and stops early."""
    config = dataclasses.replace(BASE, alpha=alpha, max_children=16)
    m, n = config.max_children, 4096
    nodes = jax.random.key_data(jax.random.split(jax.random.key(42), n))
    u = np.asarray(jax.random.uniform(jax.random.key(43), (n,), minval=1e-6, maxval=1 - 1e-6))
    slot = jnp.arange(n, dtype=jnp.int32) % 7
    got = np.asarray(
        jax.jit(jax.vmap(lambda v, x, i: W._child_index(v, x, i, config)))(nodes, u, slot)
    )
    sticks = np.asarray(jax.vmap(lambda v: rng.uniforms(v, W._STREAM_STICKS, (m,)))(nodes))
    cumulative = -np.expm1(-np.cumsum(-np.log(sticks.astype(np.float64)), axis=1) / alpha)
    k = np.sum(cumulative <= u[:, None], axis=1)
    want = np.where(k < m, k, m + np.asarray(slot))
    clear = np.min(np.abs(cumulative - u[:, None]), axis=1) > ORACLE_MARGIN * 0.1
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(got[clear], want[clear])
    assert len(np.unique(got)) > 3  # several children and, at α = 40, fresh ones
    if alpha == 40.0:
        assert (got >= m).any()


def test_difficulty_prior_is_beta():
    for a, b in [(1.0, 1.5), (0.3, 0.4)]:
        config = dataclasses.replace(BASE, difficulty_a=a, difficulty_b=b)
        draw = jax.jit(jax.vmap(lambda k, c=config: W.sample_problem(k, c).p_root))
        p = np.asarray(draw(jax.random.split(jax.random.key(15), 4096)), np.float64)
        # p is clipped to [1e-6, 1 − 1e-6]; the clipped mass is far below the KS resolution
        assert scipy.stats.kstest(p, scipy.stats.beta(a, b).cdf).pvalue > KS_ALPHA, (a, b)


def test_score_noise_per_candidate():
    batch, root = start(jax.random.key(16), BASE)
    slots, _ = expand_batch(jax.random.key(17), BASE, batch, root)
    np.testing.assert_array_equal(observe(jax.random.key(0), BASE, batch, slots)[0], slots.w)
    noisy = dataclasses.replace(BASE, candidate_score_noise=0.5)
    s1 = np.asarray(observe(jax.random.key(0), noisy, batch, slots)[0])
    d = np.asarray(W.direction_id(slots))
    w = np.asarray(slots.w)
    inner = (w > 0.01) & (w < 0.99)  # scores pushed past [1e-6, 1 − 1e-6] are clipped: ties
    twins = (d[:, :, None] == d[:, None, :]) & ~np.eye(N, dtype=bool) & inner[:, :, None]
    assert twins.any()  # copies on one node ...
    assert np.all((s1[:, :, None] != s1[:, None, :])[twins])  # ... now score differently


# ------------------------------------------------------------------------------------------
# redundancy: the Dirichlet process over children


@pytest.mark.parametrize("name", ["redundant", "paper-like"])
def test_number_of_children_matches_crp(name):
    config = W.preset(name)
    alpha = config.alpha
    tables = []
    for r in range(8):  # 8 × P independent problems, N copies of each root
        batch, root = start(jax.random.key(70 + r), config)
        _, step = expand_batch(jax.random.key(80 + r), config, batch, root)
        tables.append(distinct_per_row(step.direction))
    expected = sum(alpha / (alpha + i) for i in range(N))
    assert_close_mc(np.concatenate(tables), expected, f"E[#children of {N} copies], α={alpha}")


def test_alpha_infinite_gives_all_distinct_children():
    batch, slots = start(jax.random.key(19), IND)
    for t in range(2):
        slots, step = expand_batch(jax.random.key(80 + t), IND, batch, slots)
        assert (distinct_per_row(step.direction) == N).all()


def test_copies_on_one_node_share_everything_node_level():
    config = W.preset("redundant")
    batch, slots = start(jax.random.key(20), config)
    for t in range(4):  # depth 3 and 4 nodes may be leaves (min_steps = 3)
        slots, step = expand_batch(jax.random.key(90 + t), config, batch, slots)
    d = np.asarray(step.direction)
    twins = d[:, :, None] == d[:, None, :]
    assert twins.sum() > 4 * P * N  # many copies share a node
    for field in (
        step.finished,
        step.answer,
        step.correct,
        slots.p,
        slots.w,
        slots.label,
        slots.depth,
    ):
        x = np.asarray(field)
        assert np.all((x[:, :, None] == x[:, None, :])[twins])
    v = np.asarray(slots.vector)
    assert np.all(np.all(v[:, :, None] == v[:, None, :], axis=-1)[twins])
    finished = np.asarray(step.finished) & (np.asarray(step.answer) >= 0)
    assert finished.sum() > 100
    # a finished wrong solution answers its node's label: wrong answers of one direction agree
    wrong = finished & ~np.asarray(step.correct)
    np.testing.assert_array_equal(np.asarray(step.answer)[wrong], np.asarray(slots.label)[wrong])
    np.testing.assert_array_equal(np.asarray(step.answer)[finished & np.asarray(step.correct)], 0)


def test_wrong_answer_label_inheritance_rate():
    batch, slots = start(jax.random.key(21), IND)
    child, _ = expand_batch(jax.random.key(22), IND, batch, slots)
    kept = np.asarray(child.label) == np.asarray(slots.label)
    a = IND.num_wrong_answers
    assert_close_mc(kept, IND.label_keep + (1 - IND.label_keep) / a, "P(label kept)")
    labels = np.asarray(child.label)
    assert labels.min() >= 1 and labels.max() <= a


# ------------------------------------------------------------------------------------------
# embeddings


@pytest.mark.parametrize("name", ["paper-like", "paraphrase"])
def test_within_direction_and_parent_child_cosine(name):
    config = W.preset(name)
    # expand does not read within_cosine: the children come from IND (same tree law, α = ∞)
    assert dataclasses.replace(config, within_cosine=IND.within_cosine, alpha=IND.alpha) == IND
    batch, root = start(jax.random.key(23), IND)
    child, _ = expand_batch(jax.random.key(24), IND, batch, root)
    e_root = np.asarray(observe(jax.random.key(25), config, batch, root)[1], np.float64)
    # disjoint pairs of candidates on one node (the root): i.i.d. within-direction cosines
    within = np.sum(e_root[:, 0::2] * e_root[:, 1::2], axis=-1)
    assert_close_mc(within, config.within_cosine, f"{name}: within-direction cosine")
    # node vectors: parent·child = ρ exactly; candidates: E[e_parent·e_child] = c_w·ρ
    node_cos = np.sum(np.asarray(root.vector) * np.asarray(child.vector), axis=-1)
    np.testing.assert_allclose(node_cos, config.parent_child_cosine, atol=2e-5)
    e_child = np.asarray(observe(jax.random.key(26), config, batch, child)[1], np.float64)
    cross = np.sum(e_root * e_child, axis=-1)
    assert_close_mc(
        cross,
        config.within_cosine * config.parent_child_cosine,
        f"{name}: parent-child candidate cosine",
    )


# ------------------------------------------------------------------------------------------
# depth, tokens, answers

PATH_ROUNDS = 24
PATH_P_ROOT = 0.35


@functools.cache
def default_paths():
    """IND (default knobs, α = ∞): every slot follows its own path for PATH_ROUNDS steps without
    re-slotting, the last step final. Returns per-slot outcomes and the hazard trials."""
    config = IND
    cap = config.max_solution_tokens
    batch, slots = start(jax.random.key(27), config, PATH_P_ROOT)
    alive = np.ones((P, N), bool)
    out = {
        name: np.zeros((P, N), dtype)
        for name, dtype in [
            ("total", np.int64),
            ("answer", np.int64),
            ("correct", bool),
            ("p", np.float64),
        ]
    }
    out["max_step"], out["early_eos"], trials = 0, 0, []
    for t, k in enumerate(jax.random.split(jax.random.key(28), PATH_ROUNDS)):
        final = t == PATH_ROUNDS - 1
        slots, step = expand_batch(k, config, batch, slots, final=final)
        finished, total = np.asarray(step.finished), np.asarray(slots.tokens)
        depth = np.asarray(slots.depth)
        if not final:
            out["max_step"] = max(out["max_step"], np.asarray(step.tokens)[alive].max())
            # below the cap no truncation is possible: a step finishes iff its node is a leaf
            safe = alive & (total < cap)
            out["early_eos"] += int(np.sum(safe & finished & (depth < config.min_steps)))
            trials.append(finished[safe & (depth >= config.min_steps)])
        done = alive & finished
        out["total"][done] = total[done]
        out["answer"][done] = np.asarray(step.answer)[done]
        out["correct"][done] = np.asarray(step.correct)[done]
        out["p"][done] = np.asarray(slots.p)[done]
        alive &= ~finished
    assert not alive.any(), "the final round must finish every path"
    out["hazard_trials"] = np.concatenate(trials)
    return out


def test_token_caps_and_truncation():
    rec, config = default_paths(), IND
    cap = config.max_solution_tokens
    # the 256 cap binds (≈ 0.3% of the default Gamma steps exceed it) and holds
    assert rec["max_step"] == config.max_step_tokens
    assert rec["total"].max() <= cap and rec["total"].min() > 0
    truncated = rec["answer"] == -1
    assert truncated.any()  # ≈ 1% of paths reach 2048 tokens
    np.testing.assert_array_equal(rec["total"][truncated], cap)
    assert not rec["correct"][truncated].any()
    assert (rec["answer"] >= -1).all() and (rec["answer"] <= config.num_wrong_answers).all()
    np.testing.assert_array_equal(rec["correct"], rec["answer"] == 0)


def test_finish_hazard():
    rec, config = default_paths(), IND
    assert rec["early_eos"] == 0  # no solution ends before min_steps
    assert_close_mc(rec["hazard_trials"], config.finish_hazard, "P(leaf | depth ≥ min_steps)")


def test_success_rate_is_p_times_no_truncation():
    rec = default_paths()
    answered = (rec["answer"] >= 0).astype(float)
    # correct ~ Bernoulli(p(leaf)) given an answer; truncation is independent of the p-path
    assert_close_mc(rec["correct"] - rec["p"] * answered, 0.0, "E[correct - p(leaf)·answered]")
    assert_close_mc(rec["correct"] - PATH_P_ROOT * answered, 0.0, "P(correct) = p(root)·P(answer)")


def test_final_round_finishes_every_path_with_the_right_success_rate():
    config = IND
    batch, root = start(jax.random.key(31), config, 0.6)
    slots, _ = expand_batch(jax.random.key(32), config, batch, root)
    # children at depth 2 < min_steps = 3 are never leaves: every copy writes its own completion
    new, step = expand_batch(jax.random.key(33), config, batch, slots, final=True)
    assert np.asarray(step.finished).all()
    answer = np.asarray(step.answer)
    assert (answer >= -1).all() and answer.max() <= config.num_wrong_answers
    np.testing.assert_array_equal(new.tokens, np.asarray(slots.tokens) + np.asarray(step.tokens))
    answered = (answer >= 0).astype(float)
    assert_close_mc(
        np.asarray(step.correct) - np.asarray(new.p) * answered,
        0.0,
        "E[correct - p·answered] of forced completions",
    )
    # a completion adds R ~ Geometric(h) ≥ 1 more steps (6.7 on average) to the step itself
    _, normal = expand_batch(jax.random.key(33), config, batch, slots, final=False)
    assert np.asarray(step.tokens).mean() > 3 * np.asarray(normal.tokens).mean()
    assert not np.asarray(normal.finished).any()
    assert (np.asarray(normal.answer) == -1).all()  # an unfinished step reports no answer


# ------------------------------------------------------------------------------------------
# PRM traps (trap_rate > 0)

# Traps on but (almost) never drawn: P(a trap among the 3·P·N nodes below) ≈ 1.2e-8.
RARE_TRAPS = dataclasses.replace(BASE, trap_rate=1e-12)
TRAPS = dataclasses.replace(IND, trap_rate=0.3)


def test_trap_uniforms_come_after_every_other_field():
    """A node's other fields read the same words with traps on (the slow test below checks the
    draws themselves)."""
    off, size_off = W._node_layout(BASE)
    on, size_on = W._node_layout(RARE_TRAPS)
    assert {k: v for k, v in on.items() if k in off} == off
    assert (
        set(on) - set(off) == {"trap", "trap_w"}
        and min(on["trap"].start, on["trap_w"].start) == size_off
    )
    assert size_on > size_off


@pytest.mark.slow
def test_traps_off_draw_nothing_more():
    """The trap knobs' uniforms come after every other field of a node, so a world with traps
    that never fire reads the same draws as the world without them: three rounds agree bit for
    bit (the world without traps compiles the trap code out altogether). `describe` leaves the
    knobs out while they are off."""
    rows = []
    for config in (BASE, RARE_TRAPS):
        batch, slots = start(jax.random.key(41), config)
        out = []
        for r in range(3):
            slots, step = expand_batch(jax.random.key(42 + r), config, batch, slots, final=r == 2)
            out.append(jax.tree.map(np.asarray, (slots, step)))
        rows.append(out)
    for a, b in zip(*rows, strict=True):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(x, y)
    assert "trap_rate" not in W.describe(BASE) and W.describe(TRAPS)["trap_rate"] == 0.3
    assert W.describe(BASE) == {
        k: v for k, v in dataclasses.asdict(BASE).items() if not k.startswith("trap_")
    }


@pytest.mark.slow
def test_trap_subtrees_are_hopeless_attractive_and_of_one_answer():
    """A child is a trap w.p. trap_rate (p = 0, PRM score of mean trap_score); a trap's children
    are traps with its label; its completions all give that wrong answer."""
    batch, roots = start(jax.random.key(43), TRAPS, 0.5)
    first, _ = expand_batch(jax.random.key(44), TRAPS, batch, roots)
    trap = np.asarray(first.p) == 0.0
    assert_close_mc(trap, TRAPS.trap_rate, "P(child is a trap)")
    assert_close_mc(np.asarray(first.w)[trap], TRAPS.trap_score, "mean PRM score of a trap")
    second, _ = expand_batch(jax.random.key(45), TRAPS, batch, first)
    below = np.asarray(second.p) == 0.0
    assert below[trap].all()
    np.testing.assert_array_equal(np.asarray(second.label)[trap], np.asarray(first.label)[trap])
    assert_close_mc(below[~trap], TRAPS.trap_rate, "P(child of a genuine node is a trap)")
    _, done = expand_batch(jax.random.key(46), TRAPS, batch, second, final=True)
    answered = np.asarray(done.answer) >= 1
    assert not np.asarray(done.correct)[below].any()
    np.testing.assert_array_equal(
        np.asarray(done.answer)[below & answered], np.asarray(second.label)[below & answered]
    )
    # Control: the genuine nodes' completions are sometimes right.
    assert np.asarray(done.correct)[~below].any()
