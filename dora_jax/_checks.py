"""Eager argument checks.

Every public function checks its arguments when they are concrete (called outside `jax.jit`)
and raises a one-line `ValueError`. Under `jit` the values are tracers and the checks are
skipped; what happens then is documented in docs/allocation.md ("Bad input").
"""

from __future__ import annotations

import math

import jax
import numpy as np


def concrete(x):
    """Returns `x` as a NumPy array if it is concrete, else None (a tracer under jit)."""
    if x is None:
        return None
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


# The largest budget N. Counts are int32, but the rules apportion float32 shares, so Σ B = N stops
# being exact first: Hamilton apportionment of 20,000 random rows (K = 2…8) missed N by 1 from
# N = 2**23 on, never below 2**22. 2**20 keeps a factor 4 from the first miss and is 4,096 times
# the paper's largest budget (256).
MAX_BUDGET = 2**20


def check_budget(budget) -> None:
    """N: an integer scalar in [1, MAX_BUDGET]."""
    # Before NumPy sees it: a Python int beyond int64 would become an object array.
    big = (isinstance(budget, int) and not isinstance(budget, bool) and budget > MAX_BUDGET) or (
        isinstance(budget, float) and math.isfinite(budget) and budget > MAX_BUDGET
    )
    if big:
        raise ValueError(
            f"budget must be <= MAX_BUDGET = {MAX_BUDGET}, got {budget:.4g}"
            if isinstance(budget, float)
            else f"budget must be <= MAX_BUDGET = {MAX_BUDGET}, got {budget}"
        )
    b = concrete(budget)
    if b is None:
        return
    if b.ndim != 0 or not np.issubdtype(b.dtype, np.integer):
        raise ValueError(f"budget must be an integer scalar, got {budget!r}")
    if int(b) < 1:
        raise ValueError(f"budget must be >= 1, got {int(b)}")
    if int(b) > MAX_BUDGET:
        raise ValueError(f"budget must be <= MAX_BUDGET = {MAX_BUDGET}, got {int(b)}")


def check_positive(name: str, value) -> None:
    v = concrete(value)
    if v is None:
        return
    if v.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {v.shape}")
    if not np.isfinite(v) or float(v) <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {float(v)}")


def check_scores(scores) -> None:
    s = concrete(scores)
    if s is None:
        if getattr(scores, "ndim", 1) != 1:
            raise ValueError(f"scores must have shape [K], got {scores.shape}")
        return
    if s.ndim != 1:
        raise ValueError(f"scores must have shape [K], got shape {s.shape}")
    if s.shape[0] == 0:
        raise ValueError("scores is empty: need at least one candidate")
    if np.isnan(s).any():
        raise ValueError(f"scores contain NaN at index {int(np.flatnonzero(np.isnan(s))[0])}")
    if np.isinf(s).any():
        raise ValueError(f"scores contain inf at index {int(np.flatnonzero(np.isinf(s))[0])}")


def check_mask(mask, k: int) -> None:
    if mask is None:
        return
    if tuple(mask.shape) != (k,):
        raise ValueError(f"mask must have shape [{k}] like scores, got {tuple(mask.shape)}")
    m = concrete(mask)
    if m is not None and not m.any():
        raise ValueError("all candidates are masked: nothing to allocate to")


def check_shape(name: str, x, shape_prefix: tuple[int, ...], ndim: int) -> None:
    if x is None:
        return
    if x.ndim != ndim or tuple(x.shape[: len(shape_prefix)]) != shape_prefix:
        want = "[" + ", ".join(map(str, shape_prefix)) + (", E" if ndim == 2 else "") + "]"
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")


def check_ids(name: str, ids, k: int) -> None:
    """Direction or group ids: Int[K] with values in [0, K)."""
    if ids is None:
        return
    check_shape(name, ids, (k,), 1)
    v = concrete(ids)
    if v is None:
        return
    if not np.issubdtype(v.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {v.dtype}")
    if v.size and (v.min() < 0 or v.max() >= k):
        raise ValueError(f"{name} must lie in [0, K) = [0, {k}), got range [{v.min()}, {v.max()}]")


def check_probabilities(name: str, w) -> None:
    v = concrete(w)
    if v is None:
        return
    if np.isnan(v).any():
        raise ValueError(f"{name} contain NaN")
    if (v < 0).any() or (v > 1).any():
        raise ValueError(f"{name} must lie in [0, 1], got range [{v.min():g}, {v.max():g}]")


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}")
