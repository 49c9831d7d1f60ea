"""Test configuration: strict dtype promotion (STYLE.md §13) and shared fixtures.

Tests import the installed package (`pip install -e .[dev]`), never the source tree by path.
"""

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def x64():
    """float64 for comparisons with closed forms to ~1e-9 (STYLE.md §12)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
