"""Test configuration: strict dtype promotion and shared fixtures.

Tests import the installed package (`pip install -e .[dev]`), never the source tree by path.
"""

import pathlib

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
# Identical programs compiled by different tests (or xdist workers) are compiled once per run.
_CACHE = pathlib.Path(__file__).resolve().parents[1] / ".cache" / "jax-tests"
jax.config.update("jax_compilation_cache_dir", str(_CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture
def x64():
    """float64 for comparisons with closed forms to ~1e-9."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
