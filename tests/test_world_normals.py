"""world._once (each normal of a vector computed once) changes no value, and its A/B benchmark
(benchmarks/world_normals.py) runs with tiny arguments."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dora_jax.world as W

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_once_is_the_identity_bit_for_bit():
    """z / (1 + 0·u) is z exactly for every float32 z but subnormals (signed zeros and ±inf
    included) when u is finite; the negative control, a divisor one ulp above 1, changes z.
    (XLA's CPU arithmetic flushes subnormals to zero in any operation, and the world's normals
    never are: |z| ≥ ~1e-7 on the 23-bit uniform grid.)"""
    z = jax.random.normal(jax.random.key(0), (64, 32)) * 10.0 ** jnp.arange(
        -20, 12, dtype=jnp.float32
    )
    z = z.at[0, :4].set(jnp.asarray([0.0, -0.0, jnp.inf, -jnp.inf]))
    u = jax.random.normal(jax.random.key(1), (64, 32)) * 1e30
    u = u.at[0, 0].set(-3.0)
    got = np.asarray(jax.jit(W._once)(z, u))
    np.testing.assert_array_equal(got.view(np.uint32), np.asarray(z).view(np.uint32))
    above = np.asarray(z / jnp.nextafter(jnp.float32(1), jnp.float32(2)))
    assert not np.array_equal(above.view(np.uint32), np.asarray(z).view(np.uint32))


@pytest.mark.slow
def test_world_normals_benchmark_runs_with_tiny_arguments():
    args = ["--parts", "allocate,world", "--ks", "4", "--slots", "64", "--problems", "2"]
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "world_normals.py"),
            *args,
            "--budget",
            "4",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = {
        line.split(" (")[0]: line
        for line in result.stdout.splitlines()
        if line.startswith(("allocate", "world"))
    }
    assert set(rows) == {"allocate dora K=4", "world embed P=2 N=4", "world expand P=2 N=4"}
    assert rows["allocate dora K=4"].endswith("True")  # the world is not involved: equal
